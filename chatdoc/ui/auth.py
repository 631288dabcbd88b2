"""Staff / researcher log-in: users from ``ui.users`` (bcrypt hashes), checked per role.

Each protected view is its own Gradio app with its own ``auth`` callable, so a researcher cannot log in
to the staff view and vice versa. Handlers re-check the role of ``request.username`` (defence in depth).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from chatdoc.log import logger

# A valid hash of a random password: unknown users still pay one bcrypt check (no timing oracle).
_DUMMY_HASH = b"$2b$12$C6UzMDM.H6dfI/f/IKcEeO5Qp8G1dUAq0o9ZeC4i6HYdC5EWV6T9u"


def hash_password(password: str, rounds: int = 12) -> str:
    import bcrypt

    if not password:
        raise ValueError("the password is empty")
    if len(password.encode()) > 72:
        raise ValueError("the password is longer than 72 bytes (bcrypt's limit)")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    import bcrypt

    try:
        pw = password.encode()[:72]
        if password_hash is None:
            bcrypt.checkpw(pw, _DUMMY_HASH)
            return False
        return bcrypt.checkpw(pw, password_hash.encode())
    except (ValueError, TypeError):
        return False


def _users():
    from chatdoc.config import get_settings

    return get_settings().ui.users


def role_of(username: str | None) -> str | None:
    if not username:
        return None
    for u in _users():
        if hmac.compare_digest(u.username, username):
            return u.role
    return None


def make_auth(role: str) -> Callable[[str, str], bool]:
    """An ``auth`` callable for ``gr.mount_gradio_app`` accepting only users with ``role``."""

    def auth(username: str, password: str) -> bool:
        user = next((u for u in _users() if hmac.compare_digest(u.username, username or "")), None)
        ok = check_password(password or "", user.password_hash if user else None)
        ok = ok and user is not None and user.role == role
        logger.info("ui login {} for the {} view: {}", "accepted" if ok else "refused", role, "ok" if ok else "denied")
        return ok

    return auth


class Forbidden(Exception):
    """The request is not from a logged-in user with the required role."""


def require(request, role: str) -> str:
    """The username of ``request`` if it has ``role``; raises :class:`Forbidden` otherwise."""
    name = getattr(request, "username", None) if request is not None else None
    if not name or role_of(name) != role:
        raise Forbidden(role)
    return name
