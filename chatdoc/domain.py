"""chatdoc's domain vocabulary, in one home: triage levels, consultation phases, the red-flag shape and
consultation ids. Everything else (safety rules, dialogue state, service results, the index, the UI)
imports these names instead of spelling them again.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

from typing_extensions import TypedDict  # pydantic models (the service's results) embed it; needs this one on 3.11

Level = Literal["emergency", "urgent", "routine", "self_care", "unknown"]
#: most urgent first; "unknown" = not assessed yet
LEVELS: tuple[Level, ...] = ("emergency", "urgent", "routine", "self_care", "unknown")
#: the levels a rule can assign (everything but "unknown")
RULE_LEVELS: tuple[Level, ...] = LEVELS[:-1]

Phase = Literal["consent", "history", "advice", "closed", "escalated"]
PHASES: tuple[Phase, ...] = ("consent", "history", "advice", "escalated", "closed")


def urgency_rank(level: str) -> int:
    """0 = most urgent; unknown levels sort last."""
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def most_urgent(*levels: str) -> Level:
    known = [lv for lv in levels if lv in LEVELS]
    return min(known, key=urgency_rank) if known else "unknown"  # type: ignore[return-value]


class RedFlag(TypedDict):
    """A fired red-flag rule with the (redacted) patient words that fired it."""

    id: str
    title: str
    level: str
    evidence: str


# token_urlsafe(24) -> 32 chars of [A-Za-z0-9_-] = 192 bits. Accept 22..64 chars so other
# >=128-bit url-safe ids (e.g. uuid4().hex) also pass; anything else is junk and rejected.
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,64}")
_HAS_DIGIT_AND_LETTER = re.compile(r"(?=.*[0-9]).*[A-Za-z]")


def new_session_id() -> str:
    """A fresh session id with ~192 bits of randomness (``secrets.token_urlsafe(24)``).

    Redrawn until it holds a digit and a letter (loses < 0.01 bit): the privacy log scrubber keeps
    tokens of this shape readable but scrubs digit-free ones, which could be hyphenated names.
    """
    while True:
        sid = secrets.token_urlsafe(24)
        if _HAS_DIGIT_AND_LETTER.search(sid):
            return sid


def is_valid_session_id(value: object) -> bool:
    """True when ``value`` has the shape of a session id (no Redis lookup)."""
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None
