"""Log scrubber: every loguru message passes through the redactor before any sink sees it.

Correctness first: every message with letters or a 3+ digit run is analysed (names can hide in any
wording, so there is no keyword fast path). To stay cheap, results are cached per distinct message
(log lines repeat), and messages with nothing that could be an identifier (no letters, no 3-digit run,
e.g. "12.5", "---") skip analysis. If the redactor fails, the message is withheld, never leaked.

Consultation ids are left readable: they are random tokens, not patient identifiers, and operators
need them to follow a consultation through the log (NER used to read them as names: ``<PERSON_1>``).
"""

from __future__ import annotations

import re
from functools import lru_cache

_MAYBE_ID = re.compile(r"[A-Za-z]|\d{3}")
_MAX_CACHED = 4096

# The shape of chatdoc.memory.ids (22-64 url-safe characters; not imported: this package must not pull
# in Redis). On top of that a digit AND a letter are required, so a long hyphenated name
# ("Mary-Jane-Smith-Jones") is still scrubbed, and the token may not be part of an e-mail address or
# host name. A generated id lacks a digit with probability ~0.4 %: it is then scrubbed as before (safe).
_SESSION_ID = re.compile(
    r"(?<![A-Za-z0-9_.@-])(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{22,64}"
    r"(?![A-Za-z0-9_@-]|\.[A-Za-z0-9])"
)
# a stand-in the redactor leaves alone (it skips existing placeholders), restored after redaction
_STAND_IN = "<CHATDOC_SESSION_ID_{}>"


def _redact(message: str) -> str:
    from chatdoc.privacy.redactor import get_redactor

    ids: list[str] = []

    def hide(m: re.Match[str]) -> str:
        ids.append(m.group(0))
        return _STAND_IN.format(len(ids))

    text = get_redactor().redact(_SESSION_ID.sub(hide, message)).text
    for i, sid in enumerate(ids, 1):
        text = text.replace(_STAND_IN.format(i), sid)
    return text


@lru_cache(maxsize=_MAX_CACHED)
def _scrub_cached(message: str) -> str:
    return _redact(message)


def scrub_log_message(message: str) -> str:
    if not message or not _MAYBE_ID.search(message):
        return message
    try:
        return _scrub_cached(message) if len(message) <= 2000 else _redact(message)
    except Exception:  # never let a scrubber failure leak the raw message
        return "<log message withheld: privacy scrubber failed>"


def install_log_scrubber() -> None:
    """Register :func:`scrub_log_message` with ``chatdoc.log.add_scrubber`` (idempotent)."""
    from chatdoc.log import add_scrubber

    add_scrubber(scrub_log_message)
