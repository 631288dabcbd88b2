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


def _numbers(ll: LocaleLines) -> dict[str, str]:
    return {"emergency_number": ll.emergency_number, "emergency_department": ll.emergency_department,
            "urgent_service": ll.urgent_service}


def crisis_message(locale: str | None = None, kind: str | None = None) -> str:
    """A warm message with emergency and crisis-line guidance (``kind``: suicide, self_harm, overdose,
    abuse, violence). Wording: ``safety.crisis`` in configs/texts.yaml."""
    from chatdoc.texts import text

    ll = lines_for(locale)
    abuse = kind in ("abuse", "violence")
    lines = ll.abuse_lines if abuse and ll.abuse_lines else ll.crisis_lines
    contacts = "; ".join(f"{x.name}: {x.contact}" for x in lines)
    first = text(f"safety.crisis.{'abuse' if abuse else 'overdose' if kind == 'overdose' else 'suicide'}", **_numbers(ll))
    talk = " " + text("safety.crisis.talk", contacts=contacts) if contacts else ""
    return f"{first}{talk} {text('safety.crisis.stay')}"


def emergency_instruction(result=None, locale: str | None = None) -> str:
    """Short, unambiguous instruction that must come first when the triage level is ``emergency``.

    ``result``: a :class:`~chatdoc.safety.TriageResult` (or anything with ``crisis`` and ``fired``), or None."""
    fired = getattr(result, "fired", None) if result is not None else None
    return emergency_banner(crisis=bool(getattr(result, "crisis", False)),
                            title=fired[0].title if fired else None, locale=locale)


def emergency_banner(*, crisis: bool = False, title: str | None = None, locale: str | None = None) -> str:
    """:func:`emergency_instruction` from a stored triage: crisis flag and the most urgent rule's title."""
    from chatdoc.texts import text

    ll = lines_for(locale)
    if crisis:
        return text("safety.emergency_crisis", **_numbers(ll))
    return text("safety.emergency", title=f" ({title.lower()})" if title else "", **_numbers(ll))


_ACK = re.compile(
    r"\b(ok(?:ay)?|k|yes|yeah|yep|sure|alright|all right|understood|i understand|got it|thanks?|thank you|cheers|"
    r"i will|i'?ll (?:call|ring|go|phone|contact|do)|i have called|i'?ve (?:called|rung|phoned|read|contacted)|"
    r"calling (?:now|them)|i(?:'?m| am) safe|i read (?:it|that)|read it|noted|will do|done|i know)\b",
    re.I,
)
_REFUSE = re.compile(r"\b(no\b|nope|won'?t|will not|not going to|don'?t want to|can'?t|never)\b", re.I)


def is_acknowledgement(text: str, *, crisis: bool | None = None) -> bool:
    """True when the patient acknowledges a crisis/emergency message ("ok", "I'll call them", "I'm safe").

    ``crisis``: whether the caller's triage already found a crisis statement in ``text`` (saves a triage)."""
    t = (text or "").strip()
    if not t or len(t) > 300:
        return False
    if _REFUSE.search(t) and not re.search(r"\bi(?:'?m| am) safe\b", t, re.I):
        return False
    from chatdoc.safety.triage import assess

    if assess([t]).crisis if crisis is None else crisis:  # a new crisis statement is not an acknowledgement
        return False
    return bool(_ACK.search(t))
