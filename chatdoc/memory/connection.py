"""Process-wide Redis connection.

``CHATDOC_REDIS_URL`` (``settings.redis.url``) wins; otherwise the embedded server
(:class:`~chatdoc.memory.server.EmbeddedRedis`) for ``settings.data_path / "redis"`` is started or
reused on first use. :func:`reset_connection` drops the client and every cache built on it
(checkpointer, index) so tests or a changed environment take effect.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chatdoc.log import logger
from chatdoc.memory.errors import StorageUnavailable, describe
from chatdoc.memory.server import EmbeddedRedis

__all__ = ["ensure_server", "redis_url", "get_redis", "reset_connection", "on_reset"]

_lock = threading.RLock()
_url: str | None = None
_client: redis.Redis | None = None
_server: EmbeddedRedis | None = None
_reset_hooks: list[Callable[[], None]] = []


def on_reset(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a cache-clearing hook run by :func:`reset_connection` (used by checkpoint/index)."""
    if fn not in _reset_hooks:
        _reset_hooks.append(fn)
    return fn


def _settings():
    from chatdoc.config import get_settings

    return get_settings()


def ensure_server() -> str:
    """Make sure a Redis server is available and return its URL (with password).

    External URL: returned as is (not contacted here). Embedded: started or reused now.
    Raises :class:`~chatdoc.memory.server.EmbeddedRedisError` (a ``StorageUnavailable``).
    """
    global _url, _server
    with _lock:
        if _url is not None:
            return _url
        s = _settings()
        if s.redis.url:
            _url = s.redis.url
            logger.info("using external redis (CHATDOC_REDIS_URL)")
        else:
            _server = EmbeddedRedis.from_settings(s).start()
            _url = _server.url
        return _url


def redis_url() -> str:
    """URL of the server in use, including the password: never log or display it."""
    return ensure_server()


def embedded_server() -> EmbeddedRedis | None:
    """The embedded server this process uses (``None`` with ``CHATDOC_REDIS_URL``)."""
    ensure_server()
    return _server


def get_redis() -> redis.Redis:
    """Process-wide ``redis.Redis`` (bytes in/out: ``decode_responses=False``); thread-safe pool."""
    global _client
    with _lock:
        if _client is None:
            url = ensure_server()
            timeout = _settings().redis.socket_timeout
            try:
                _client = redis.Redis.from_url(
                    url,
                    decode_responses=False,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    health_check_interval=30,
                    client_name=f"chatdoc-{os.getpid()}",
                    # a couple of quick retries ride out a blip; a dead server fails within ~1 s
                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
                )
            except ValueError as e:  # malformed CHATDOC_REDIS_URL
                raise StorageUnavailable(f"invalid redis URL: {describe(e)}") from None
        return _client


def reset_connection() -> None:
    """Forget the client, URL and everything cached on them (the embedded server keeps running
    until exit; ``get_redis()`` reconnects according to the current settings)."""
    global _client, _url, _server
    with _lock:
        if _client is not None:
            try:
                _client.close()
            except Exception:  # noqa: BLE001
                pass
        _client = None
        _url = None
        _server = None
        for fn in list(_reset_hooks):
            fn()
