"""Erasure: a real LangGraph run checkpointed in Redis, then delete_session leaves no trace."""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from chatdoc.memory import delete_session, get_checkpointer, get_index, new_session_id, sweep_expired


class State(TypedDict):
    turns: Annotated[list[str], operator.add]
    step: int


class SubState(TypedDict):
    step: int


def _graph(checkpointer):
    sub = StateGraph(SubState)
    sub.add_node("inner", lambda s: {"step": s["step"] + 10})
    sub.add_edge(START, "inner")
    sub.add_edge("inner", END)

    g = StateGraph(State)
    g.add_node("ask", lambda s: {"turns": ["question"], "step": s.get("step", 0) + 1})
    g.add_node("sub", sub.compile())  # a subgraph: checkpoints in a child namespace too
    g.add_edge(START, "ask")
    g.add_edge("ask", "sub")
    g.add_edge("sub", END)
    return g.compile(checkpointer=checkpointer)


def _dump(r) -> list[tuple[bytes, bytes]]:
    """(key, every value byte string) for the whole DB."""
    out = []
    for key in r.scan_iter(count=1000):
        t = r.type(key)
        t = t.decode() if isinstance(t, bytes) else t
        if t == "string":
            vals = [r.get(key) or b""]
        elif t == "hash":
            vals = [x for kv in r.hgetall(key).items() for x in kv]
        elif t == "zset":
            vals = r.zrange(key, 0, -1)
        elif t == "set":
            vals = list(r.smembers(key))
        elif t == "list":
            vals = r.lrange(key, 0, -1)
        else:
            vals = [repr(t).encode()]
        out.extend((key, v if isinstance(v, bytes) else str(v).encode()) for v in vals)
        out.append((key, b""))
    return out


def _traces(r, sid: str) -> list[bytes]:
    needle = sid.encode()
    return sorted({k for k, v in _dump(r) if needle in k or needle in v})


def _make_session(saver, sid: str, n_turns: int = 2) -> None:
    graph = _graph(saver)
    cfg = {"configurable": {"thread_id": sid}}
    for i in range(n_turns):
        graph.invoke({"turns": [f"patient says {i} for {sid}"], "step": 0}, cfg)
    assert graph.get_state(cfg).values["turns"][-1] == "question"
    assert graph.get_state(cfg).values["step"] == 11
    idx = get_index()
    idx.upsert(sid, status="advice", triage_level="urgent", persona="gp", title=f"[REDACTED] {sid[:4]}")
    idx.put_record(sid, "summary", {"session": sid, "chief_complaint": "[REDACTED]"})
    idx.put_record(sid, "approval", {"by": "dr_a"})


def test_delete_session_leaves_no_trace(chatdoc_redis_env):
    r = chatdoc_redis_env
    saver = get_checkpointer()
    sid, other = new_session_id(), new_session_id()
    _make_session(saver, sid)
    _make_session(saver, other)

    traces = _traces(r, sid)
    assert any(b":lg:cp:" in k for k in traces) and any(b":lg:blob:" in k for k in traces)
    assert f"chatdoc:session:{sid}".encode() in traces and f"chatdoc:records:{sid}".encode() in traces
    # every per-session key carries the retention TTL (checkpoint keys included)
    for key in r.scan_iter(match=f"*{sid}*"):
        assert r.ttl(key) > 0, key

    removed = delete_session(sid)
    assert removed >= 6
    assert _traces(r, sid) == []  # no key name and no value anywhere mentions the id
    assert get_index().get(sid) is None and get_index().records(sid) == {}
    assert saver.get_tuple({"configurable": {"thread_id": sid}}) is None
    assert delete_session(sid) == 0  # idempotent

    # the other session is untouched
    assert get_index().get(other) is not None
    st = _graph(saver).get_state({"configurable": {"thread_id": other}})
    assert st.values["turns"].count("question") == 2
    assert get_index().get_record(other, "summary")["session"] == other


def test_delete_session_safety_net_and_validation(chatdoc_redis_env):
    r = chatdoc_redis_env
    sid = new_session_id()
    # keys the saver/index do not know about (e.g. a timeline that expired before its blobs)
    r.set(f"chatdoc:lg:blob:{sid}::turns:00001", b"x")
    r.set(f"chatdoc:other:{sid}", b"y")
    r.hset("chatdoc:lg:threads", f"chatdoc:lg:idx:{sid}:", f'{{"thread": "{sid}", "ns": ""}}')
    assert delete_session(sid) == 2
    assert _traces(r, sid) == []
    with pytest.raises(ValueError):
        delete_session("*")
    assert r.dbsize() == 0


def test_async_graph_uses_same_saver(chatdoc_redis_env):
    saver = get_checkpointer()
    sid = new_session_id()
    graph = _graph(saver)
    cfg = {"configurable": {"thread_id": sid}}
    out = asyncio.run(graph.ainvoke({"turns": ["hello"], "step": 0}, cfg))
    assert out == {"turns": ["hello", "question"], "step": 11}
    assert graph.get_state(cfg).values["turns"] == out["turns"]  # sync read of async writes
    delete_session(sid)
    assert _traces(chatdoc_redis_env, sid) == []


def test_sweep_expired_erases_idle_sessions(chatdoc_redis_env):
    r = chatdoc_redis_env
    saver = get_checkpointer()
    idx = get_index()
    old, fresh = new_session_id(), new_session_id()
    _make_session(saver, old, n_turns=1)
    _make_session(saver, fresh, n_turns=1)
    idx.upsert(old, updated_at=time.time() - idx.ttl - 60)  # idle longer than the retention
    assert sweep_expired() == 1
    assert _traces(r, old) == []
    assert idx.get(fresh) is not None
    # a session whose index hash expired on its own is swept too (its checkpoints with it)
    r.delete(idx.key(fresh))
    assert sweep_expired() == 1
    assert _traces(r, fresh) == []
