"""Issue 13, finding 4: erasure must leave no byte of the consultation in Redis's data directory.

The attack: after "delete consultation" the keys were gone, but the append-only file on disk still named
the session hundreds of times and held the transcript. Every test here runs its own redis-server
(EmbeddedRedis in tmp_path, AOF on) so the files it writes can be read back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from chatdoc.memory.server import EmbeddedRedis

# clinical, non-identifying (so redaction keeps it verbatim), and found nowhere else
PHRASE = "clicks like a castanet since the tangerine incident"


@pytest.fixture
def server(tmp_path):
    srv = EmbeddedRedis(tmp_path / "redis", port=0).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def service(server, monkeypatch):
    """chatdoc.service on ``server`` with template wording (no model needed)."""
    from chatdoc.config import get_settings
    from chatdoc.memory import reset_connection

    monkeypatch.setenv("CHATDOC_REDIS_URL", server.url)
    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
    get_settings.cache_clear()
    reset_connection()
    from chatdoc.service import build_service

    try:
        yield build_service()
    finally:
        reset_connection()
        monkeypatch.delenv("CHATDOC_REDIS_URL")
        get_settings.cache_clear()


def files_containing(root: Path, needle: bytes) -> list[str]:
    """Every file under ``root`` whose bytes contain ``needle`` (relative paths)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def wait_on_disk(root: Path, needle: bytes, timeout: float = 5.0) -> list[str]:
    """The AOF is fsynced every second: wait until ``needle`` reaches a file."""
    deadline = time.monotonic() + timeout
    while not (found := files_containing(root, needle)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def aof_files_match_manifest(root: Path) -> None:
    """Redis 7: every file in appendonlydir/ is listed in the manifest, none as history (type h)."""
    d = root / "appendonlydir"
    if not d.is_dir():  # Redis 6 keeps a single AOF file, replaced by the rewrite
        return
    manifest = next(d.glob("*.manifest"))
    entries = [line.split() for line in manifest.read_text().splitlines() if line.strip()]
    listed = {e[e.index("file") + 1] for e in entries}
    assert not [e for e in entries if e[e.index("type") + 1] == "h"], manifest.read_text()
    assert {p.name for p in d.iterdir()} == listed | {manifest.name}


def test_deleted_consultation_leaves_no_bytes_in_the_data_dir(server, service):
    keep = service.start_consultation().session_id
    service.record_consent(keep)
    service.send_message(keep, "my knee hurts when I climb stairs")
    sid = service.start_consultation().session_id
    service.record_consent(sid)
    service.send_message(sid, f"My left elbow {PHRASE}.")
    # the attack: both the id and the patient's words are in the files on disk
    assert wait_on_disk(server.dir, sid.encode())
    assert wait_on_disk(server.dir, PHRASE.encode())

    assert service.delete_consultation(sid) > 0

    assert files_containing(server.dir, sid.encode()) == []
    assert files_containing(server.dir, PHRASE.encode()) == []
    # the search can see what the rewritten files hold: the consultation that was not deleted is there
    assert files_containing(server.dir, keep.encode())
    aof_files_match_manifest(server.dir)
    assert service.get_state(keep).session_id == keep


def test_a_rewrite_already_running_is_waited_out_and_repeated(server):
    """A rewrite that began before the erasure would keep the erased commands in the incremental file it
    opened: rewrite_aof must wait for it and start its own."""
    from chatdoc.memory import rewrite_aof

    r = server.client()
    r.mset({f"filler:{i}": "x" * 100 for i in range(20)})
    r.config_set("rdb-key-save-delay", 50_000)  # 50 ms per key: the running rewrite takes ~1 s
    try:
        r.bgrewriteaof()
        r.set("secret", PHRASE)  # written and erased while that rewrite runs
        r.delete("secret")
        assert wait_on_disk(server.dir, PHRASE.encode())
        rewrites = r.info("persistence")["aof_rewrites"]
        r.config_set("rdb-key-save-delay", 0)
        assert rewrite_aof(r, timeout=30)
        assert r.info("persistence")["aof_rewrites"] == rewrites + 1
    finally:
        r.config_set("rdb-key-save-delay", 0)
    assert files_containing(server.dir, PHRASE.encode()) == []
    aof_files_match_manifest(server.dir)


def test_expired_records_leave_the_aof_at_the_scheduled_rewrite(server, monkeypatch):
    """TTL expiry removes the key, not the commands in the AOF: the scheduled rewrite does."""
    from chatdoc.config import get_settings
    from chatdoc.memory.aof import maybe_scheduled_rewrite, schedule_key

    monkeypatch.setenv("CHATDOC_REDIS_AOF_REWRITE_HOURS", "24")
    get_settings.cache_clear()
    r = server.client()
    now = time.time()
    assert maybe_scheduled_rewrite(r, now=now, wait=True)  # first run: rewrite and remember when
    assert float(r.get(schedule_key())) == now
    r.set("chatdoc:records:expiring", PHRASE, px=50)
    time.sleep(0.2)
    assert r.get("chatdoc:records:expiring") is None
    assert wait_on_disk(server.dir, PHRASE.encode())  # expired, but still on disk
    assert not maybe_scheduled_rewrite(r, now=now + 23 * 3600, wait=True)  # not due yet
    assert files_containing(server.dir, PHRASE.encode())
    assert maybe_scheduled_rewrite(r, now=now + 25 * 3600, wait=True)
    assert files_containing(server.dir, PHRASE.encode()) == []
    # the schedule key holds a timestamp only
    assert float(r.get(schedule_key())) == now + 25 * 3600
    assert not maybe_scheduled_rewrite(r, now=now + 26 * 3600, hours=0)  # 0 = off
    get_settings.cache_clear()


def test_erasure_goes_on_where_the_server_refuses_the_rewrite(server, caplog_loguru):
    """An external Redis whose ACL forbids BGREWRITEAOF, or that runs without AOF: keys are erased,
    a warning says the files may lag, nothing fails."""
    from chatdoc.memory import delete_session, new_session_id
    from chatdoc.memory.checkpoint import ChatdocRedisSaver
    from chatdoc.memory.index import ConsultationIndex

    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", ">app-pass", "~*", "&*", "+@all", "-bgrewriteaof")
    limited = redis.Redis(host=server.host, port=server.port, username="app", password="app-pass")
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.bgrewriteaof()

    sid = new_session_id()
    idx = ConsultationIndex(limited)
    idx.upsert(sid, status="history", triage_level="routine", title="cough")
    saver = ChatdocRedisSaver(limited, prefix="chatdoc:lg")
    assert delete_session(sid, redis_client=limited, checkpointer=saver, index=idx) >= 1
    assert not admin.exists(idx.key(sid))
    assert any("refused the AOF rewrite" in m for m in caplog_loguru)

    admin.config_set("appendonly", "no")
    caplog_loguru.clear()
    idx.upsert(sid, status="history", triage_level="routine", title="cough")
    assert delete_session(sid, redis_client=admin, checkpointer=saver, index=idx) >= 1
    assert not admin.exists(idx.key(sid))
    assert any("without AOF" in m for m in caplog_loguru)


@pytest.fixture
def caplog_loguru():
    from chatdoc.log import logger

    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    try:
        yield seen
    finally:
        logger.remove(sink)
