"""Process-wide Redis connection.

``CHATDOC_REDIS_URL`` (``settings.redis.url``) wins; otherwise the embedded server
(:class:`~chatdoc.memory.server.EmbeddedRedis`) for ``settings.data_path / "redis"`` is started or
reused on first use. :func:`reset_connection` drops the client and every cache built on it
(checkpointer, index) so tests or a changed environment take effect.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from chatdoc.log import logger
from chatdoc.memory.errors import StorageUnavailable, describe
from chatdoc.memory.server import EmbeddedRedis, _pid_alive

__all__ = ["ensure_server", "redis_url", "get_redis", "reset_connection", "on_reset", "health"]

_lock = threading.RLock()
_url: str | None = None
_client: redis.Redis | None = None
_server: EmbeddedRedis | None = None
_reset_hooks: list[Callable[[], None]] = []
_health_client: tuple[str, float, redis.Redis] | None = None  # (url, timeout, client)


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


def _drop_clients() -> None:
    """Close the clients and clear everything cached on them (caller holds ``_lock``)."""
    global _client, _health_client
    for c in (_client, _health_client[2] if _health_client else None):
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
    _client = None
    _health_client = None
    for fn in list(_reset_hooks):
        fn()


def reset_connection() -> None:
    """Forget the client, URL and everything cached on them (the embedded server keeps running
    until exit; ``get_redis()`` reconnects according to the current settings)."""
    global _url, _server
    with _lock:
        _drop_clients()
        _url = None
        _server = None


def _restart_if_dead(srv: EmbeddedRedis) -> bool:
    """Start the embedded server again when its process has died. True when restarted."""
    global _url
    with _lock:
        if srv.pid is None or _pid_alive(srv.pid):
            return False
        logger.warning("embedded redis-server (pid {}) has died; restarting it", srv.pid)
        old_url = _url
        srv.start()  # under its file lock: another process may have restarted it already (then reused)
        if srv.url != old_url:  # a new port (redis.port 0): clients and caches point at the old one
            _drop_clients()
            _url = srv.url
        logger.info("embedded redis-server restarted (pid {})", srv.pid)
        return True


def health(timeout: float = 1.0) -> dict[str, Any]:
    """Storage health for ``/healthz``; never raises, never contains the password.

    Returns ``{"ok": bool, "embedded": bool, "latency_ms": float | None, "error": str | None,
    "restarted": bool}``. Starts the embedded server if nothing was started yet; restarts it when its
    process died (logged). ``ok`` is a PING answered within ``timeout`` seconds.
    """
    global _health_client
    out: dict[str, Any] = {"ok": False, "embedded": False, "latency_ms": None, "error": None, "restarted": False}
    try:
        ensure_server()
        srv = _server
        out["embedded"] = srv is not None
        if srv is not None:
            out["restarted"] = _restart_if_dead(srv)
        with _lock:
            url = ensure_server()
            if _health_client is None or _health_client[:2] != (url, timeout):
                if _health_client is not None:
                    _health_client[2].close()
                # its own client: a short timeout and no retries, unlike the one used for real work
                client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout,
                    client_name=f"chatdoc-{os.getpid()}", retry=Retry(NoBackoff(), 0),
                )
                _health_client = (url, timeout, client)
            client = _health_client[2]
        t0 = time.perf_counter()
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            # a pooled socket to a server that was restarted (by us just now, or by its operator) is stale,
            # not a storage failure: drop the pool's sockets and ask once more on a new connection
            client.connection_pool.disconnect()
            t0 = time.perf_counter()
            client.ping()
        out["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        out["ok"] = True
    except Exception as e:  # noqa: BLE001 - a health check reports, it does not raise
        out["error"] = str(e) if isinstance(e, StorageUnavailable) else describe(e)
    return out
