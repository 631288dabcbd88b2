"""Consultation (session) ids: the shape lives in :mod:`chatdoc.domain`; this adds the checking helper."""

from __future__ import annotations

from chatdoc.domain import is_valid_session_id, new_session_id

__all__ = ["new_session_id", "is_valid_session_id", "check_session_id"]


def check_session_id(value: object) -> str:
    """Return ``value`` if it is a valid session id, else raise ``ValueError`` (without echoing it)."""
    if not is_valid_session_id(value):
        raise ValueError("invalid session id")
    return value  # type: ignore[return-value]
