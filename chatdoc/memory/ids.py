"""Consultation (session) ids: unguessable, URL-safe, cheap to validate before touching Redis."""

from __future__ import annotations

import re
import secrets

# token_urlsafe(24) -> 32 chars of [A-Za-z0-9_-] = 192 bits. Accept 22..64 chars so other
# >=128-bit url-safe ids (e.g. uuid4().hex) also pass; anything else is junk and rejected.
_SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,64}")
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
    return isinstance(value, str) and _SESSION_ID_RE.fullmatch(value) is not None


def check_session_id(value: object) -> str:
    """Return ``value`` if it is a valid session id, else raise ``ValueError`` (without echoing it)."""
    if not is_valid_session_id(value):
        raise ValueError("invalid session id")
    return value  # type: ignore[return-value]
