"""Crisis and emergency wording: numbers per locale from ``safety.crisis_file``, acknowledgement check.

After a crisis the dialogue stops routine questions until :func:`is_acknowledgement` is true for a
patient turn; after an emergency it puts :func:`emergency_instruction` before anything else.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from chatdoc.safety.rules import RulesError


class Line(BaseModel):
    name: str
    contact: str


class LocaleLines(BaseModel):
    model_config = {"extra": "forbid"}
    emergency_number: str
    emergency_department: str
    urgent_service: str
    crisis_lines: list[Line] = []
    abuse_lines: list[Line] = []


class CrisisConfig(BaseModel):
    default_locale: str = "en-GB"
    locales: dict[str, LocaleLines]


@lru_cache(maxsize=4)
def _load(path: str) -> CrisisConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return CrisisConfig.model_validate(raw)
    except FileNotFoundError:
        raise RulesError(f"crisis lines file not found: {path}") from None
    except (yaml.YAMLError, ValidationError) as e:
        raise RulesError(f"crisis lines file {path} is invalid: {str(e).splitlines()[0]}") from None


def lines_for(locale: str | None = None) -> LocaleLines:
    """Numbers for ``locale`` (default: ``safety.locale``); unknown locales fall back to the file's default."""
    from chatdoc.config import get_settings

    s = get_settings()
    cfg = _load(str(s.path(s.safety.crisis_file)))
    loc = locale or s.safety.locale
    return cfg.locales.get(loc) or cfg.locales.get(loc.split("-")[0]) or cfg.locales[cfg.default_locale]


def crisis_message(locale: str | None = None, kind: str | None = None) -> str:
    """A warm message with emergency and crisis-line guidance (``kind``: suicide, self_harm, overdose,
    abuse, violence)."""
    ll = lines_for(locale)
    lines = ll.abuse_lines if kind in ("abuse", "violence") and ll.abuse_lines else ll.crisis_lines
    contacts = "; ".join(f"{x.name}: {x.contact}" for x in lines)
    if kind == "overdose":
        first = (f"Thank you for telling me. If you have taken too much of any medicine, please call "
                 f"{ll.emergency_number} or go to {ll.emergency_department} now, even if you feel well.")
    elif kind in ("abuse", "violence"):
        first = (f"Thank you for telling me - that took courage, and it is not your fault. If you are in danger "
                 f"right now, please call {ll.emergency_number}.")
    else:
        first = (f"I'm really sorry you're going through this, and thank you for telling me. Your safety matters. "
                 f"If you might act on these thoughts or are hurt, please call {ll.emergency_number} or go to "
                 f"{ll.emergency_department} now.")
    talk = f" You can talk to someone any time: {contacts}." if contacts else ""
    return (f"{first}{talk} I'm an automated assistant, not a person, but I'll stay here. "
            "Please reply to let me know you've read this, and whether you are safe right now.")


def emergency_instruction(result=None, locale: str | None = None) -> str:
    """Short, unambiguous instruction that must come first when the triage level is ``emergency``."""
    ll = lines_for(locale)
    if result is not None and getattr(result, "crisis", False):
        return (f"Your safety matters most right now. If you are in danger or might act on these thoughts, "
                f"call {ll.emergency_number} now or go to {ll.emergency_department}.")
    title = ""
    if result is not None and getattr(result, "fired", None):
        title = f" ({result.fired[0].title.lower()})"
    return (f"This could be an emergency{title}. Call {ll.emergency_number} now or go to "
            f"{ll.emergency_department}. Do not wait to see if it gets better.")


_ACK = re.compile(
    r"\b(ok(?:ay)?|k|yes|yeah|yep|sure|alright|all right|understood|i understand|got it|thanks?|thank you|cheers|"
    r"i will|i'?ll (?:call|ring|go|phone|contact|do)|i have called|i'?ve (?:called|rung|phoned|read|contacted)|"
    r"calling (?:now|them)|i(?:'?m| am) safe|i read (?:it|that)|read it|noted|will do|done|i know)\b",
    re.I,
)
_REFUSE = re.compile(r"\b(no\b|nope|won'?t|will not|not going to|don'?t want to|can'?t|never)\b", re.I)


def is_acknowledgement(text: str) -> bool:
    """True when the patient acknowledges a crisis/emergency message ("ok", "I'll call them", "I'm safe")."""
    t = (text or "").strip()
    if not t or len(t) > 300:
        return False
    if _REFUSE.search(t) and not re.search(r"\bi(?:'?m| am) safe\b", t, re.I):
        return False
    from chatdoc.safety.triage import assess

    if assess([t]).crisis:  # a new crisis statement is not an acknowledgement
        return False
    return bool(_ACK.search(t))
