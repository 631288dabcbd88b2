"""Staff / researcher log-in: bcrypt users from ``ui.users``, server-side sessions, throttling.

Gradio's own ``auth=`` keeps tokens forever, runs the password check on the event loop, sets a
``SameSite=None`` cookie and logs out with a GET; so chatdoc does log-in itself (``/auth/login``,
``/auth/logout`` in :mod:`chatdoc.ui.server`) and hands Gradio an ``auth_dependency`` that reads the
session cookie. Sessions live in Redis (shared by every replica) and expire when idle and at an absolute
lifetime (``security.session_*``). Failed log-ins back off exponentially per user name and per client
address (``security.login_*``), counted in Redis too, so across replicas.
Every attempt is written to the audit log (user, address, result; never the password).

This module holds no Gradio import, so it is cheap to test.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from contextlib import contextmanager
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


# ---------------------------------------------------------------------------------------------- shared state
# Sessions and throttling counters live in Redis (the store every replica already shares), so a staff user
# logged in on one replica is logged in on all, and an attacker's failures count across replicas. Keys hold
# SHA-256 digests of tokens, user names and addresses, never the values; every key has a TTL.
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AuthUnavailable(RuntimeError):
    """The shared store (Redis) cannot be reached: no log-in can be checked or kept."""


class LoginThrottle:
    """Exponential back-off per user name and per client address.

    After ``max_failures`` failures for a key, further attempts are refused (without a password check)
    for ``backoff * 2**(failures - max_failures)`` seconds, capped at ``backoff_max``; a success clears
    the user name's counter; counters are forgotten ``backoff_max`` after their last failure.
    """

    def __init__(self, redis_fn: Callable[[], object], prefix: str, max_failures: int, backoff: float,
                 backoff_max: float):
        self.r, self.prefix = redis_fn, prefix
        self.max_failures, self.backoff, self.backoff_max = max_failures, backoff, backoff_max

    def _key(self, kind: str, value: str) -> str:
        return f"{self.prefix}:auth:fail:{kind}:{_digest(value)}"

    def _wait(self, raw: dict, now: float) -> float:
        count, last = int(raw.get(b"count", 0)), float(raw.get(b"last", 0))
        if count < self.max_failures:
            return 0.0
        lock = min(self.backoff * 2 ** (count - self.max_failures), self.backoff_max)
        return max(0.0, last + lock - now)

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until ``user`` may try again from ``address`` (0 = now)."""
        now = time.time()
        with _store_errors():
            pipe = self.r().pipeline()
            pipe.hgetall(self._key("u", user.casefold()))
            pipe.hgetall(self._key("a", address))
            u, a = pipe.execute()
        return max(self._wait(u, now), self._wait(a, now))

    def record(self, user: str, address: str, ok: bool) -> None:
        with _store_errors():
            r = self.r()
            if ok:
                r.delete(self._key("u", user.casefold()))
                return
            pipe = r.pipeline()
            for key in (self._key("u", user.casefold()), self._key("a", address)):
                pipe.hincrby(key, "count", 1)
                pipe.hset(key, "last", repr(time.time()))
                pipe.expire(key, max(1, math.ceil(self.backoff_max)))
            pipe.execute()


@dataclass
class Session:
    user: str
    role: str
    csrf: str
    created: float = field(default_factory=time.time)


class SessionStore:
    """Opaque random tokens -> sessions, with idle (Redis TTL, renewed on use) and absolute expiry."""

    def __init__(self, redis_fn: Callable[[], object], prefix: str, idle_s: float, max_s: float):
        self.r, self.prefix, self.idle_s, self.max_s = redis_fn, prefix, idle_s, max_s

    def _key(self, token: str) -> str:
        return f"{self.prefix}:auth:session:{_digest(token)}"

    def create(self, user: str, role: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        sess = Session(user=user, role=role, csrf=secrets.token_urlsafe(24))
        with _store_errors():
            pipe = self.r().pipeline()
            pipe.hset(self._key(token), mapping={"user": user, "role": role, "csrf": sess.csrf,
                                                 "created": repr(sess.created)})
            pipe.pexpire(self._key(token), max(1, int(self.idle_s * 1000)))
            pipe.execute()
        return token, sess

    def get(self, token: str | None, touch: bool = True) -> Session | None:
        if not token or len(token) > 200:
            return None
        key = self._key(token)
        with _store_errors():
            raw = self.r().hgetall(key)
            if not raw:
                return None
            sess = Session(user=raw[b"user"].decode(), role=raw[b"role"].decode(), csrf=raw[b"csrf"].decode(),
                           created=float(raw[b"created"]))
            if time.time() - sess.created > self.max_s or role_of(sess.user) != sess.role:
                self.r().delete(key)
                return None
            if touch:
                self.r().pexpire(key, max(1, int(self.idle_s * 1000)))
        return sess

    def delete(self, token: str | None) -> None:
        if token:
            with _store_errors():
                self.r().delete(self._key(token))


@contextmanager
def _store_errors():
    import redis

    from chatdoc.memory import StorageUnavailable

    try:
        yield
    except (redis.exceptions.RedisError, StorageUnavailable, OSError) as e:
        raise AuthUnavailable(type(e).__name__) from None


class Auth:
    """The app's log-in state, kept in the shared Redis (one per app, built from settings)."""

    def __init__(self, settings=None, redis_fn: Callable[[], object] | None = None):
        s = settings or _settings()
        sec, prefix = s.security, s.redis.key_prefix
        if redis_fn is None:
            from chatdoc.memory import get_redis as redis_fn
        self.sessions = SessionStore(redis_fn, prefix, sec.session_idle_minutes * 60, sec.session_max_hours * 3600)
        self.throttle = LoginThrottle(redis_fn, prefix, sec.login_max_failures, sec.login_backoff_seconds,
                                      sec.login_backoff_max_seconds)

    def login(self, username: str, password: str, address: str, view: str) -> tuple[str, str | Session | float]:
        """Blocking (bcrypt): run it in a worker thread. Returns ("ok", (token, session)),
        ("throttled", seconds), ("denied", "") or ("unavailable", "") when the shared store is down."""
        username = (username or "").strip()[:200]
        try:
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
        except AuthUnavailable:
            audit("login", user=username, address=address, result="unavailable", view=view)
            return "unavailable", ""
        audit("login", user=username, address=address, result="ok", view=view, role=role)
        return "ok", (token, sess)

    def session(self, token: str | None, touch: bool = True) -> Session | None:
        """The valid session of ``token`` or None (also None when the shared store is down)."""
        try:
            return self.sessions.get(token, touch=touch)
        except AuthUnavailable:
            return None

    def user_for(self, token: str | None, role: str) -> str | None:
        sess = self.session(token)
        return sess.user if sess is not None and sess.role == role else None


class Forbidden(Exception):
    """The request is not from a logged-in user with the required role."""


def require(request, role: str) -> str:
    """The username of ``request`` if it has ``role``; raises :class:`Forbidden` otherwise."""
    name = getattr(request, "username", None) if request is not None else None
    if not name or role_of(name) != role:
        raise Forbidden(role)
    return name
