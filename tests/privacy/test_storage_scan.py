"""End-to-end storage scan: a consultation redacted at the door leaves no raw identifier in Redis.

Drives the real memory layer (LangGraph checkpointer + consultation index on a real redis-server):
patient messages are redacted *before* they enter the graph (as the dialogue does), the
``PlaceholderState`` is kept in the graph state, then every key and value in Redis is scanned.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from tests.redis_scan import dump_all

RAW = ["Sarah Jones", "07700 900123", "sarah.jones@example.com", "943 476 5919", "42 Oak Road", "LS1 4AP", "12/05/1975"]
MESSAGES = [
    "Hi, my name is Sarah Jones, DOB 12/05/1975, I've had chest pain for 3 days",
    "you can call me on 07700 900123 or sarah.jones@example.com",
    "my nhs number is 943 476 5919 and I live at 42 Oak Road, LS1 4AP",
    "Sarah Jones again - I'm on metformin 500mg for my diabetes",
]


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

    blob = dump_all(chatdoc_redis_env)
    assert blob, "nothing was stored"
    assert b"<PERSON_1>" in blob  # the redacted conversation is there ...
    low = blob.lower()
    for raw in RAW:  # ... and none of the raw values, in any spelling
        for form in {raw, raw.replace(" ", ""), raw.lower()}:
            assert form.lower().encode() not in low, raw
    assert b"metformin 500mg" in low  # clinical content survives
