"""StorageUnavailable while redis-server is down; data (AOF) and service back after a restart."""

from __future__ import annotations

import time

import pytest

from chatdoc.memory import (
    EmbeddedRedis,
    StorageUnavailable,
    delete_session,
    get_checkpointer,
    get_index,
    new_session_id,
    reset_connection,
)
from tests.memory.test_erase import _graph


@pytest.fixture
def own_server(tmp_path, monkeypatch):
    """A private server (the shared one must not go down under other tests)."""
    from chatdoc.config import get_settings

    srv = EmbeddedRedis(tmp_path / "redis", port=0).start()
    monkeypatch.setenv("CHATDOC_REDIS_URL", srv.url)
    get_settings.cache_clear()
    reset_connection()
    holder = {"srv": srv}
    try:
        yield holder
    finally:
        reset_connection()
        holder["srv"].stop()
        monkeypatch.delenv("CHATDOC_REDIS_URL")
        get_settings.cache_clear()


def test_storage_unavailable_then_recovery(own_server, tmp_path):
    srv = own_server["srv"]
    port = srv.port
    idx, saver = get_index(), get_checkpointer()
    graph = _graph(saver)
    sid = new_session_id()
    cfg = {"configurable": {"thread_id": sid}}
    graph.invoke({"turns": ["first"], "step": 0}, cfg)
    idx.upsert(sid, status="history", triage_level="routine", title="[REDACTED] rash")
    idx.put_record(sid, "summary", {"cc": "[REDACTED] rash"})

    srv.stop()  # server goes away mid-session
    t0 = time.monotonic()
    for call in (
        lambda: idx.get(sid),
        lambda: idx.upsert(sid, status="advice"),
        lambda: idx.list(),
        lambda: idx.put_record(sid, "approval", {"by": "dr"}),
        lambda: idx.records(sid),
        lambda: saver.get_tuple(cfg),
        lambda: graph.invoke({"turns": ["second"], "step": 0}, cfg),
        lambda: delete_session(sid),
    ):
        with pytest.raises(StorageUnavailable, match="storage is unavailable") as ei:
            call()
        assert srv.password not in str(ei.value)
        assert isinstance(ei.value, RuntimeError)
    assert time.monotonic() - t0 < 20, "failing calls must not hang"

    # same port, same data dir (AOF): everything is back, with the same client objects
    own_server["srv"] = srv2 = EmbeddedRedis(tmp_path / "redis", port=port).start()
    assert srv2.port == port
    meta = idx.get(sid)
    assert meta is not None and meta.status == "history" and meta.title == "[REDACTED] rash"
    assert idx.get_record(sid, "summary") == {"cc": "[REDACTED] rash"}
    assert idx.get_record(sid, "approval") is None  # the failed write did not half-happen
    assert graph.get_state(cfg).values["turns"] == ["first", "question"]
    graph.invoke({"turns": ["second"], "step": 0}, cfg)  # the retried turn goes through
    assert graph.get_state(cfg).values["turns"] == ["first", "question", "second", "question"]
    idx.upsert(sid, status="advice")
    assert [m.id for m in idx.list(status="advice")] == [sid]
    assert delete_session(sid) > 0
