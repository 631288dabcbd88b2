"""A down model engine never loses a turn: with model wording on and the openai backend pointed at a closed port
(nothing listens), every turn completes with the reviewed template wording, quickly, and nothing is lost."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def down_service(chatdoc_redis_env, monkeypatch):
    from chatdoc.config import get_settings, load_settings
    from chatdoc.llm.remote import RemoteBackend
    from chatdoc.llm.serve import free_port
    from chatdoc.service import build_service

    monkeypatch.setenv("CHATDOC_DIALOGUE_MAX_QUESTIONS", "10")
    get_settings.cache_clear()
    port = free_port()  # bound and released: nothing listens there
    s = load_settings(model={"backend": "openai", "remote_url": f"http://127.0.0.1:{port}", "remote_retries": 1,
                             "remote_timeout_s": 3},
                      dialogue={"use_model_wording": True})
    backend = RemoteBackend(s)  # a down engine at start-up is not fatal
    yield build_service(s, backend=backend)
    backend.close()
    get_settings.cache_clear()


def test_turns_are_worded_from_templates_while_the_engine_is_down(down_service):
    svc = down_service
    sid = svc.start_consultation().session_id
    svc.record_consent(sid)
    first = svc.send_message(sid, "I have had a sore throat for two days")  # also loads extraction's models
    assert first.reply.strip().endswith("?") and first.source == "template"
    t0 = time.perf_counter()
    rep = svc.send_message(sid, "It started on Monday")
    took = time.perf_counter() - t0
    assert rep.reply.strip() and rep.source == "template"
    assert took < 5, f"a down engine must not keep the patient waiting ({took:.1f} s)"
    # the streamed path (the web app's) too: no error event, the turn is done and stored
    events = list(svc.stream_message(sid, "No fever, just pain when swallowing"))
    assert [e.kind for e in events if e.kind in ("error", "done")] == ["done"], events
    assert events[-1].reply.source == "template"
    view = svc.get_state(sid)
    patient = [m["text"] for m in view.transcript if m["role"] == "patient"]
    assert len(patient) == 3 and "swallowing" in patient[-1]  # no turn lost
    assert view.question_log and all(q["source"] == "template" for q in view.question_log)


def test_word_question_falls_back_at_once_on_engine_unavailable(down_service):
    """One try per turn: the guard's regeneration is not spent on an engine that is down."""
    from chatdoc.dialogue.personas import get_persona
    from chatdoc.dialogue.questions import choose_set, plan
    from chatdoc.dialogue.respond import word_question

    calls = {"n": 0}
    backend = down_service.backend
    real = backend.generate

    def counting(req):
        calls["n"] += 1
        return real(req)

    backend.generate = counting
    item = plan(choose_set("sore throat"))[0]
    w = word_question(item, get_persona(None), [], adapter=None, use_model=True, backend=backend, red_flag=False,
                      recent_outputs=[])
    assert w.source == "template" and w.reasons == ["engine_unavailable"] and calls["n"] == 1
    assert w.text == get_persona(None).phrase(item.question, item.child)
