"""ConsultationIndex and records on a real redis-server."""

from __future__ import annotations

import pytest

from chatdoc.memory import ConsultationIndex, SessionMeta, get_index, is_valid_session_id, new_session_id

TTL = 3600


@pytest.fixture
def index(redis_client):
    return ConsultationIndex(redis_client, "chatdoc", TTL)


def test_session_ids():
    a, b = new_session_id(), new_session_id()
    assert a != b and len(a) == 32 and is_valid_session_id(a)
    for junk in ["", "short", "../../etc/passwd", "a" * 65, "x" * 31 + "*", None, 42, "chatdoc:session:x" * 2]:
        assert not is_valid_session_id(junk)


def test_upsert_get_roundtrip(index):
    sid = new_session_id()
    assert index.get(sid) is None
    m = index.upsert(sid, persona="gp", title="[PERSON] reports   cough\nfor 3 days")
    assert isinstance(m, SessionMeta)
    assert m.status == "consent" and m.triage_level == "unknown" and m.flagged is False
    assert m.title == "[PERSON] reports cough for 3 days"
    got = index.get(sid)
    assert got == m
    created = got.created_at
    m2 = index.upsert(sid, status="advice", triage_level="urgent", flagged=True, approved_by="dr_a", approved_at=123.5)
    assert m2.created_at == created and m2.updated_at >= created
    got = index.get(sid)
    assert (got.status, got.triage_level, got.flagged, got.approved_by, got.approved_at, got.persona) == (
        "advice", "urgent", True, "dr_a", 123.5, "gp",
    )
    index.upsert(sid, approved_by=None, approved_at=None, flagged=False)
    got = index.get(sid)
    assert got.approved_by is None and got.approved_at is None and got.flagged is False
    assert len(index.upsert(sid, title="x" * 500).title) == 120


def test_validation(index):
    sid = new_session_id()
    with pytest.raises(ValueError):
        index.upsert(sid, status="bogus")
    with pytest.raises(ValueError):
        index.upsert(sid, triage_level="later")
    with pytest.raises(ValueError):
        index.upsert(sid, colour="red")
    with pytest.raises(ValueError):
        index.upsert("not a valid id", status="history")
    with pytest.raises(ValueError):
        index.get("*")
    with pytest.raises(ValueError):
        index.put_record(sid, "Bad Kind", {})
    with pytest.raises(ValueError):
        index.list(status="nope")
    assert index.get(sid) is None  # nothing written by the failed calls


def test_list_order_and_filters(index):
    ids = {}
    t = 1_000.0
    for name, triage, status in [
        ("routine_old", "routine", "history"),
        ("emerg_old", "emergency", "escalated"),
        ("self_care", "self_care", "closed"),
        ("routine_new", "routine", "advice"),
        ("unknown", "unknown", "consent"),
        ("urgent", "urgent", "advice"),
        ("emerg_new", "emergency", "advice"),
    ]:
        t += 10
        sid = new_session_id()
        ids[name] = sid
        index.upsert(sid, triage_level=triage, status=status, updated_at=t)
    names = {v: k for k, v in ids.items()}
    order = [names[m.id] for m in index.list()]
    assert order == ["emerg_new", "emerg_old", "urgent", "routine_new", "routine_old", "self_care", "unknown"]
    assert [names[m.id] for m in index.list(limit=3)] == ["emerg_new", "emerg_old", "urgent"]
    assert [names[m.id] for m in index.list(status="advice")] == ["emerg_new", "urgent", "routine_new"]
    assert [names[m.id] for m in index.list(triage="routine")] == ["routine_new", "routine_old"]
    assert [names[m.id] for m in index.list(status=["closed", "consent"])] == ["self_care", "unknown"]
    assert [names[m.id] for m in index.list(status="advice", triage="emergency")] == ["emerg_new"]
    # re-triage moves the session between levels (no duplicate, no stale entry)
    index.upsert(ids["unknown"], triage_level="emergency", updated_at=t + 100)
    order = [names[m.id] for m in index.list()]
    assert order[0] == "unknown" and order.count("unknown") == 1 and len(order) == 7
    assert index.list(triage="unknown") == []
    index.delete(ids["urgent"])
    assert "urgent" not in [names[m.id] for m in index.list()]


def test_records(index):
    sid = new_session_id()
    index.upsert(sid, status="history")
    assert index.get_record(sid, "summary") is None and index.records(sid) == {}
    summary = {"chief_complaint": "[REDACTED] headache", "red_flags": [], "triage": "routine", "n": 3}
    index.put_record(sid, "summary", summary)
    index.put_record(sid, "approval", {"by": "dr_a", "at": 1.5})
    index.put_record(sid, "comparison.v1", {"a": "x", "b": "y", "winner": "a"})
    assert index.get_record(sid, "summary") == summary
    assert set(index.records(sid)) == {"summary", "approval", "comparison.v1"}
    index.put_record(sid, "approval", {"by": "dr_b", "at": 2.5})
    assert index.get_record(sid, "approval") == {"by": "dr_b", "at": 2.5}
    assert index.delete_record(sid, "approval") and index.get_record(sid, "approval") is None
    with pytest.raises(TypeError):
        index.put_record(sid, "summary", ["not", "a", "dict"])


def test_ttl_on_every_session_key_refreshed(index, redis_client):
    sid = new_session_id()
    index.upsert(sid, status="history")
    index.put_record(sid, "summary", {"x": 1})
    keys = [k for k in redis_client.scan_iter(match=f"*{sid}*")]
    assert {k.decode() for k in keys} == {f"chatdoc:session:{sid}", f"chatdoc:records:{sid}"}
    for k in keys:
        assert 0 < redis_client.ttl(k) <= TTL
    for k in keys:
        redis_client.expire(k, 10)
    index.upsert(sid, status="advice")
    for k in keys:
        assert redis_client.ttl(k) > TTL - 5, "TTL not refreshed on update"
    for k in keys:
        redis_client.expire(k, 10)
    index.put_record(sid, "other", {})
    for k in keys:
        assert redis_client.ttl(k) > TTL - 5


def test_get_index_uses_settings(chatdoc_redis_env):
    from chatdoc.config import get_settings

    idx = get_index()
    assert idx is get_index()
    assert idx.prefix == get_settings().redis.key_prefix
    assert idx.ttl == int(get_settings().redis.ttl_days * 86400)
    sid = new_session_id()
    idx.upsert(sid, status="history")
    assert chatdoc_redis_env.exists(f"chatdoc:session:{sid}")


def test_concurrent_upserts_keep_sorted_sets_consistent(index, redis_client, redis_url):
    import random
    import threading

    import redis as _redis

    from chatdoc.domain import LEVELS as TRIAGE_LEVELS

    sid = new_session_id()
    index.upsert(sid)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        own = ConsultationIndex(_redis.Redis.from_url(redis_url), "chatdoc", TTL)
        try:
            for _ in range(40):
                if rnd.random() < 0.5:
                    own.upsert(sid, triage_level=rnd.choice(TRIAGE_LEVELS))
                else:
                    own.upsert(sid, status=rnd.choice(["history", "advice"]))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
        finally:
            own.r.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    level = index.get(sid).triage_level
    holders = [lv for lv in TRIAGE_LEVELS if redis_client.zscore(index.triage_key(lv), sid) is not None]
    assert holders == [level]
    assert [m.id for m in index.list()] == [sid]
