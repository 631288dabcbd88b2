"""chatdoc.privacy: offline PII/PHI redaction for patient chat text (Presidio + spaCy, no network).

Public API::

    from chatdoc.privacy import get_redactor, PlaceholderState, redact_text
    state = PlaceholderState.new()                     # one per consultation, stored in the dialogue state
    red = get_redactor().redact("my name is john smith", state)
    red.text      # "my name is <PERSON_1>"
    red.entities  # [Entity(type="PERSON", start=11, end=21, score=0.85, placeholder="<PERSON_1>")]
    state = red.state                                  # same value later -> same placeholder

Decision: no mapping back to the original value is kept (there is no setting to keep one). The
session keeps only a ``PlaceholderState``: a random per-session salt, HMAC-SHA256(deployment key,
salt || type || normalised value) -> placeholder, and per-type counters; never the raw value. The
deployment key (``chatdoc.privacy.keys``) is never stored with the state.
See docs/PRIVACY.md for the entity types, the allow-list and the measured numbers.
"""

from chatdoc.privacy.placeholders import PlaceholderState
from chatdoc.privacy.redactor import Entity, Redaction, Redactor, contains_identifier, get_redactor, redact_text
from chatdoc.privacy.scrub import install_log_scrubber, scrub_log_message

__all__ = [
    "Entity",
    "PlaceholderState",
    "Redaction",
    "Redactor",
    "contains_identifier",
    "get_redactor",
    "install_log_scrubber",
    "redact_text",
    "scrub_log_message",
]
