"""End-to-end storage scan: a consultation redacted at the door leaves no raw identifier in Redis.

Drives the real memory layer (LangGraph checkpointer + consultation index on a real redis-server):
patient messages are redacted *before* they enter the graph (as the dialogue does), the
``PlaceholderState`` is kept in the graph state, then every key and value in Redis is scanned.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from typing import Annotated, TypedDict

import pytest

RAW = ["Sarah Jones", "07700 900123", "sarah.jones@example.com", "943 476 5919", "42 Oak Road", "LS1 4AP", "12/05/1975"]
MESSAGES = [
    "Hi, my name is Sarah Jones, DOB 12/05/1975, I've had chest pain for 3 days",
    "you can call me on 07700 900123 or sarah.jones@example.com",
    "my nhs number is 943 476 5919 and I live at 42 Oak Road, LS1 4AP",
    "Sarah Jones again - I'm on metformin 500mg for my diabetes",
]


def _expand(value: bytes) -> list[bytes]:
    """The value plus any base64 payloads inside JSON envelopes ({"t": "msgpack", "d": "..."}), decoded,
    so a raw identifier cannot hide behind the serializer's encoding."""
    out = [value]
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return out
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack += list(x.values())
        elif isinstance(x, list):
            stack += x
        elif isinstance(x, str) and len(x) >= 8:
            try:
                out.append(base64.b64decode(x, validate=True))
            except (ValueError, binascii.Error):
                pass
    return out


def _dump_all(client) -> bytes:
    out = []
    for key in client.scan_iter(count=500):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
        else:
            out.append(client.dump(key) or b"")
    return b"\n".join(part for v in out for part in _expand(v))


def test_no_raw_identifier_in_redis(chatdoc_redis_env, redactor):
    pytest.importorskip("langgraph")
    from langgraph.graph import END, START, StateGraph

    from chatdoc.memory import get_checkpointer, get_index, new_session_id
    from chatdoc.privacy import PlaceholderState

    class S(TypedDict):
        messages: Annotated[list[str], operator.add]
        privacy: dict

    g = StateGraph(S)
    g.add_node("echo", lambda s: {"messages": ["thanks, noted"]})
    g.add_edge(START, "echo")
    g.add_edge("echo", END)
    graph = g.compile(checkpointer=get_checkpointer())

    sid = new_session_id()
    cfg = {"configurable": {"thread_id": sid}}
    state = PlaceholderState.new()
    for msg in MESSAGES:
        red = redactor.redact(msg, state)
        state = red.state
        graph.invoke({"messages": [red.text], "privacy": state.model_dump()}, cfg)
    get_index().upsert(sid, status="history", triage_level="routine", title=redactor.redact(MESSAGES[0]).text[:40])

    blob = _dump_all(chatdoc_redis_env)
    assert blob, "nothing was stored"
    assert b"<PERSON_1>" in blob  # the redacted conversation is there ...
    low = blob.lower()
    for raw in RAW:  # ... and none of the raw values, in any spelling
        for form in {raw, raw.replace(" ", ""), raw.lower()}:
            assert form.lower().encode() not in low, raw
    assert b"metformin 500mg" in low  # clinical content survives
