"""Log scrubber: every loguru message passes through the redactor before any sink sees it.

Correctness first: every message with letters or a 3+ digit run is analysed (names can hide in any
wording, so there is no keyword fast path). To stay cheap, results are cached per distinct message
(log lines repeat), and messages with nothing that could be an identifier (no letters, no 3-digit run,
e.g. "12.5", "---") skip analysis. If the redactor fails, the message is withheld, never leaked.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MAYBE_ID = re.compile(r"[A-Za-z]|\d{3}")
_MAX_CACHED = 4096


@lru_cache(maxsize=_MAX_CACHED)
def _scrub_cached(message: str) -> str:
    from chatdoc.privacy.redactor import get_redactor

    return get_redactor().redact(message).text


def scrub_log_message(message: str) -> str:
    if not message or not _MAYBE_ID.search(message):
        return message
    try:
        return _scrub_cached(message) if len(message) <= 2000 else _scrub_cached.__wrapped__(message)
    except Exception:  # never let a scrubber failure leak the raw message
        return "<log message withheld: privacy scrubber failed>"


def install_log_scrubber() -> None:
    """Register :func:`scrub_log_message` with ``chatdoc.log.add_scrubber`` (idempotent)."""
    from chatdoc.log import add_scrubber

    add_scrubber(scrub_log_message)
