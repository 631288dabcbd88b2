"""Real Redis server for tests (owned by the memory area; see chatdoc/memory).

Fixtures:
  redis_server       session: a real redis-server (EmbeddedRedis: free port, tmp dir, password, AOF);
                     has ``.url`` (with password), ``.port``, ``.password``, ``.dir``
  redis_url          session: ``redis_server.url``
  redis_client       function: ``redis.Redis`` on it (bytes), FLUSHDB before each test
  chatdoc_redis_env  function: CHATDOC_REDIS_URL set to the test server, settings cache cleared and
                     chatdoc.memory's process-wide client/checkpointer/index reset (before and after),
                     DB flushed; yields the client. Use it for code that calls get_redis()/get_index().
"""

from __future__ import annotations

import pytest
import redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    from chatdoc.memory.server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url, decode_responses=False)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def chatdoc_redis_env(monkeypatch, redis_client, redis_url):
    from chatdoc.config import get_settings
    from chatdoc.memory import reset_connection

    monkeypatch.setenv("CHATDOC_REDIS_URL", redis_url)
    get_settings.cache_clear()
    reset_connection()
    try:
        yield redis_client
    finally:
        reset_connection()
        monkeypatch.delenv("CHATDOC_REDIS_URL", raising=False)
        get_settings.cache_clear()


@pytest.fixture
def svc(chatdoc_redis_env, monkeypatch):
    """A fresh ``Consultations`` on the test Redis with template wording (no model needed)."""
    from chatdoc.config import get_settings
    from chatdoc.service import build_service

    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
    get_settings.cache_clear()
    yield build_service()
    get_settings.cache_clear()
