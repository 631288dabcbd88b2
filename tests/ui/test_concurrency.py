"""Concurrency in one process: while a slow model generation holds the only model slot (``ui.concurrency_limit: 1``),
/healthz answers at once, a template turn and a staff page complete, and a second model turn waits in the queue
with its position shown, then gets its model wording.

The app runs in this process (uvicorn in a thread) on the test Redis, with a held model: a stand-in backend whose
generation waits until the test lets it go (the one thing a real engine cannot be made to do on cue).
"""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

from chatdoc.llm import GenerationResult
from tests.fixtures_app import STAFF
from tests.security.conftest import login_client
from tests.security.gradio_raw import GradioRaw

class HeldModel:
    """Generations wait for ``go``; ``started`` counts the ones that began. It words the question it is asked for
    (the topic named in the system text), so the wording passes the acceptance check."""

    def __init__(self):
        self.go = threading.Event()
        self.started = threading.Semaphore(0)
        self.calls = 0

    def build_prompt(self, system, turns, max_new_tokens=None) -> str:
        return system

    def generate(self, request) -> GenerationResult:
        self.calls += 1
        self.started.release()
        assert self.go.wait(60)
        topic = re.search(r"about (?:their|their child's) (.+?)\.?$", request.prompt.strip()).group(1)
        return GenerationResult(text=f"Could you tell me about your {topic}?", prompt_tokens=10, new_tokens=9,
                                ttft_s=0.01, total_s=0.02, stopped_by="stop", adapter=None)

    def list_adapters(self):
        return []

    def info(self):
        return {"backend": "held"}


@pytest.fixture
def app(chatdoc_redis_env, monkeypatch):
    import uvicorn

    from chatdoc.config import get_settings, load_settings
    from chatdoc.llm.serve import free_port
    from chatdoc.service import build_service
    from chatdoc.ui.auth import hash_password
    from chatdoc.ui.server import build_app

    users = [{"username": STAFF[0], "password_hash": hash_password(STAFF[1], rounds=4), "role": "staff"}]
    for k, v in {"CHATDOC_UI_USERS": json.dumps(users), "CHATDOC_UI_CONCURRENCY_LIMIT": "1",
                 "CHATDOC_DIALOGUE_USE_MODEL_WORDING": "true", "CHATDOC_DIALOGUE_WORDING_ATTEMPTS": "1",
                 # one model job per turn (the question) and no time budget: this test is about the queue
                 "CHATDOC_DIALOGUE_ACKNOWLEDGE": "false", "CHATDOC_DIALOGUE_MODEL_BUDGET_S": "60"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    s = get_settings()
    # one template consultation first: redaction, extraction and triage load their models before anything is timed
    warm = build_service(load_settings(dialogue={"use_model_wording": False}))
    sid = warm.start_consultation().session_id
    warm.record_consent(sid)
    warm.send_message(sid, "I have had a headache for two days, Jane Doe, 12 High Street")
    warm.delete_consultation(sid)
    port = free_port()
    model = HeldModel()
    service = build_service(s, backend=model)
    server = uvicorn.Server(uvicorn.Config(build_app(s, service), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        pytest.fail("the in-process app did not answer /healthz")
    try:
        yield base, model, service
    finally:
        model.go.set()
        server.should_exit = True
        t.join(15)
        get_settings.cache_clear()


def test_generation_gate_is_fifo_with_positions_and_gives_up_after_its_wait():
    from chatdoc.service import GenerationGate

    gate = GenerationGate(1, wait_s=5)
    assert gate.acquire("a")
    got: dict = {}
    waiters = [threading.Thread(target=lambda k=k: got.setdefault(k, gate.acquire(k))) for k in ("b", "c")]
    for w in waiters:
        w.start()
        while not gate.position(w is waiters[0] and "b" or "c"):
            time.sleep(0.01)
    assert (gate.position("b"), gate.position("c"), gate.position("a")) == (1, 2, 0)
    assert gate.acquire("d", timeout=0.2) is False  # behind b and c, gives up
    gate.release()
    waiters[0].join(5)
    assert got == {"b": True} and gate.position("c") == 1  # first come, first served
    gate.release()
    waiters[1].join(5)
    assert got == {"b": True, "c": True} and gate.stats() == {"limit": 1, "running": 1, "waiting": 0}


def _patient(base: str) -> tuple[GradioRaw, str]:
    g = GradioRaw(base)
    g.call(g.fn_index("on_load"), [])
    res = g.call(g.fn_index("on_consent"), [None])
    return g, re.search(r'resume-code\\">([A-Za-z0-9_-]{22,64})<', g.outputs_text(res)).group(1)


def _send_in_background(g: GradioRaw, text: str) -> tuple[threading.Thread, dict]:
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(out=g.call(g.fn_index("on_send"), [text, None])), daemon=True)
    t.start()
    return t, box


@pytest.mark.slow  # an app server (in this process) and the redaction models
def test_a_held_model_turn_queues_only_model_turns(app):
    base, model, service = app
    a, sid_a = _patient(base)
    b, sid_b = _patient(base)
    c, sid_c = _patient(base)
    ta, box_a = _send_in_background(a, "I have had a sore throat for two days")
    assert model.started.acquire(timeout=60), "patient A's turn never reached the model"

    # the model is held by A: health, a template turn and a staff page go on
    t0 = time.perf_counter()
    r = httpx.get(base + "/healthz", timeout=10)
    assert r.status_code == 200 and time.perf_counter() - t0 < 1.0, (r.status_code, time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = b.call(b.fn_index("on_send"), ["I have crushing chest pain spreading to my left arm and I am sweating", None],
                 timeout=30)
    took = time.perf_counter() - t0
    assert out["messages"][-1]["success"] and "triage-banner" in b.outputs_text(out)
    assert took < 10, took
    assert service.get_state(sid_b).phase == "escalated"  # worded from the reviewed template, no model needed
    staff = GradioRaw(base, "/staff", client=login_client(base, STAFF))
    assert sid_a[:10] in staff.outputs_text(staff.call(0, ["any", "any"], timeout=30))

    # a second model turn waits for the slot, and is told its place in the queue
    tc, box_c = _send_in_background(c, "I have had a cough for a week")
    deadline = time.monotonic() + 20
    while service.gate.position(sid_c) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.gate.stats() == {"limit": 1, "running": 1, "waiting": 1}
    time.sleep(0.5)  # the stream polls every 0.2 s
    model.go.set()
    ta.join(30)
    tc.join(30)
    assert box_a["out"]["messages"][-1]["success"] and box_c["out"]["messages"][-1]["success"]
    assert "You&#x27;re in a queue (position 1)" in c.outputs_text(box_c["out"]) or \
        "in a queue (position 1)" in c.outputs_text(box_c["out"])
    assert model.calls == 2
    for sid in (sid_a, sid_c):  # both waited for the model and got its wording; nothing lost
        log = service.get_state(sid).question_log
        assert log[-1]["source"] == "model" and log[-1]["text"].startswith("Could you tell me about your"), log[-1]
    assert service.gate.stats()["running"] == 0
