"""Staff / researcher log-in: bcrypt users from ``ui.users``, server-side sessions, throttling.

Gradio's own ``auth=`` keeps tokens forever, runs the password check on the event loop, sets a
``SameSite=None`` cookie and logs out with a GET; so chatdoc does log-in itself (``/auth/login``,
``/auth/logout`` in :mod:`chatdoc.ui.server`) and hands Gradio an ``auth_dependency`` that reads the
session cookie. Sessions expire when idle and at an absolute lifetime (``security.session_*``).
Failed log-ins back off exponentially per user name and per client address (``security.login_*``).
Every attempt is written to the audit log (user, address, result; never the password).

This module holds no Gradio import, so it is cheap to test.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from chatdoc.log import audit

# A valid hash of a random password: unknown users still pay one bcrypt check (no timing oracle).
_DUMMY_HASH = b"$2b$12$C6UzMDM.H6dfI/f/IKcEeO5Qp8G1dUAq0o9ZeC4i6HYdC5EWV6T9u"
COOKIE = "chatdoc_session"


def hash_password(password: str, rounds: int = 12) -> str:
    import bcrypt

    if not password:
        raise ValueError("the password is empty")
    if len(password.encode()) > 72:
        raise ValueError("the password is longer than 72 bytes (bcrypt's limit)")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    """bcrypt check (CPU-bound, releases the GIL): call it off the event loop."""
    import bcrypt

    try:
        pw = password.encode()[:72]
        if password_hash is None:
            bcrypt.checkpw(pw, _DUMMY_HASH)
            return False
        return bcrypt.checkpw(pw, password_hash.encode())
    except (ValueError, TypeError):
        return False


def _settings():
    from chatdoc.config import get_settings

    return get_settings()


def _users():
    return _settings().ui.users


def role_of(username: str | None) -> str | None:
    if not username:
        return None
    for u in _users():
        if hmac.compare_digest(u.username, username):
            return u.role
    return None


def verify(username: str, password: str) -> str | None:
    """The role of ``username`` if ``password`` is right, else None (one bcrypt check either way)."""
    user = next((u for u in _users() if hmac.compare_digest(u.username, username or "")), None)
    ok = check_password(password or "", user.password_hash if user else None)
    return user.role if ok and user is not None else None


# ---------------------------------------------------------------------------------------------- throttling
@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class LoginThrottle:
    """Exponential back-off per user name and per client address, in this process's memory.

    After ``max_failures`` failures for a key, further attempts are refused (without a password check)
    for ``backoff * 2**(failures - max_failures)`` seconds, capped at ``backoff_max``; a success clears
    the user name's counter; counters are forgotten ``backoff_max`` after their last failure.
    (Several app replicas each keep their own counters: an attacker gets at most N times the budget.)
    """

    def __init__(self, max_failures: int, backoff: float, backoff_max: float):
        self.max_failures, self.backoff, self.backoff_max = max_failures, backoff, backoff_max
        self._f: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float:
        f = self._f.get(key)
        if f is None:
            return 0.0
        if now - f.last > self.backoff_max:
            del self._f[key]
            return 0.0
        if f.count < self.max_failures:
            return 0.0
        lock = min(self.backoff * 2 ** (f.count - self.max_failures), self.backoff_max)
        return max(0.0, f.last + lock - now)

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until ``user`` may try again from ``address`` (0 = now)."""
        now = time.time()
        with self._lock:
            return max(self._wait("u:" + user.casefold(), now), self._wait("a:" + address, now))

    def record(self, user: str, address: str, ok: bool) -> None:
        now = time.time()
        with self._lock:
            if ok:
                self._f.pop("u:" + user.casefold(), None)
                return
            for key in ("u:" + user.casefold(), "a:" + address):
                f = self._f.setdefault(key, _Failures())
                f.count += 1
                f.last = now


# ---------------------------------------------------------------------------------------------- sessions
@dataclass
class Session:
    user: str
    role: str
    csrf: str
    created: float = field(default_factory=time.time)
    seen: float = field(default_factory=time.time)


class SessionStore:
    """Opaque random tokens -> sessions, with idle and absolute expiry. In memory: a restart logs staff out."""

    def __init__(self, idle_s: float, max_s: float):
        self.idle_s, self.max_s = idle_s, max_s
        self._s: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, role: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        sess = Session(user=user, role=role, csrf=secrets.token_urlsafe(24))
        with self._lock:
            self._s[token] = sess
        return token, sess

    def get(self, token: str | None, touch: bool = True) -> Session | None:
        if not token:
            return None
        now = time.time()
        with self._lock:
            sess = self._s.get(token)
            if sess is None:
                return None
            if now - sess.seen > self.idle_s or now - sess.created > self.max_s or role_of(sess.user) != sess.role:
                del self._s[token]
                return None
            if touch:
                sess.seen = now
            return sess

    def delete(self, token: str | None) -> Session | None:
        with self._lock:
            return self._s.pop(token, None) if token else None


class Auth:
    """The app's log-in state: one per app (built from settings)."""

    def __init__(self, settings=None):
        sec = (settings or _settings()).security
        self.sessions = SessionStore(sec.session_idle_minutes * 60, sec.session_max_hours * 3600)
        self.throttle = LoginThrottle(sec.login_max_failures, sec.login_backoff_seconds, sec.login_backoff_max_seconds)

    def login(self, username: str, password: str, address: str, view: str) -> tuple[str, str | Session | float]:
        """Blocking (bcrypt): run it in a worker thread. Returns ("ok", (token, session)) ,
        ("throttled", seconds) or ("denied", "")."""
        username = (username or "").strip()[:200]
        wait = self.throttle.retry_after(username, address)
        if wait > 0:
            audit("login", user=username, address=address, result="throttled", view=view)
            return "throttled", wait
        role = verify(username, password or "")
        ok = role is not None and (view == "" or role == view)
        self.throttle.record(username, address, ok)
        if not ok:
            audit("login", user=username, address=address, result="denied", view=view)
            return "denied", ""
        token, sess = self.sessions.create(username, role)
        audit("login", user=username, address=address, result="ok", view=view, role=role)
        return "ok", (token, sess)

    def user_for(self, token: str | None, role: str) -> str | None:
        sess = self.sessions.get(token)
        return sess.user if sess is not None and sess.role == role else None


class Forbidden(Exception):
    """The request is not from a logged-in user with the required role."""


def require(request, role: str) -> str:
    """The username of ``request`` if it has ``role``; raises :class:`Forbidden` otherwise."""
    name = getattr(request, "username", None) if request is not None else None
    if not name or role_of(name) != role:
        raise Forbidden(role)
    return name
