"""chatdoc.service contract: typed results, ServiceError codes, storage failure and retry, per-run options."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import pytest


def test_models_and_errors(svc):
    from chatdoc.service import PersonaInfo, ServiceError, SessionStart, TurnReply

    names = {p.name for p in svc.list_personas()}
    assert {"gp", "paediatric", "triage_nurse"} <= names
    st = svc.start_consultation("triage_nurse")
    assert isinstance(st, SessionStart) and isinstance(st.persona, PersonaInfo) and len(st.session_id) >= 22
    with pytest.raises(ServiceError) as e:
        svc.start_consultation("nope")
    assert e.value.code == "bad_input"
    r = svc.record_consent(st.session_id)
    assert isinstance(r, TurnReply) and r.phase == "history" and not r.done
    with pytest.raises(ServiceError) as e:
        svc.send_message(st.session_id, "")
    assert e.value.code == "bad_input"
    with pytest.raises(ServiceError) as e:
        svc.get_state("A" * 32)
    assert e.value.code == "not_found"
    with pytest.raises(ServiceError) as e:
        svc.export_consultation(st.session_id, "pdf")
    assert e.value.code == "bad_input"
    assert svc.summarize_transcript("Doctor: Any fever?\nPatient: no").structured["ros"]["negatives"] == ["fever"]


def test_stream_gives_the_reply_once_then_done(svc):
    """Each part of a reply is sent once it passed its checks: here one question, so one token event."""
    sid = svc.start_consultation().session_id
    svc.record_consent(sid)
    events = list(svc.stream_message(sid, "I have had a cough for 5 days"))
    assert [e.kind for e in events] == ["token", "done"]
    assert events[0].text == events[1].reply.reply and events[0].text.endswith("?")
    assert events[1].reply.source == "template"
    bad = list(svc.stream_message(sid, ""))
    assert [(e.kind, e.code) for e in bad] == [("error", "bad_input")]
    urgent = list(svc.stream_message(sid, "now I have crushing chest pain and I can't breathe"))
    assert [e.kind for e in urgent][:2] == ["banner", "token"] and urgent[-1].kind == "done"  # the emergency first
    assert "".join(e.text for e in urgent if e.kind == "token") == urgent[-1].reply.reply
    assert urgent[0].text == urgent[-1].reply.banner and urgent[-1].reply.triage_level == "emergency"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_storage_unavailable_then_retry(tmp_path, monkeypatch):
    from chatdoc.config import get_settings
    from chatdoc.memory import reset_connection
    from chatdoc.memory.server import EmbeddedRedis
    from chatdoc.service import ServiceError, build_service

    port = _free_port()
    srv = EmbeddedRedis(tmp_path / "r", port=port).start()
    try:
        monkeypatch.setenv("CHATDOC_REDIS_URL", srv.url)
        monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
        monkeypatch.setenv("CHATDOC_REDIS_SOCKET_TIMEOUT", "1")
        get_settings.cache_clear()
        reset_connection()
        service = build_service()

        sid = service.start_consultation().session_id
        service.record_consent(sid)
        r1 = service.send_message(sid, "I have had a cough for 5 days")
        srv.stop()
        with pytest.raises(ServiceError) as e:
            service.send_message(sid, "no")
        assert e.value.code == "storage_unavailable" and "not saved" in e.value.message
        srv = EmbeddedRedis(tmp_path / "r", port=port).start()  # same data dir (AOF): confirmed turns are back
        r2 = service.send_message(sid, "no")
        assert r2.questions_asked == r1.questions_asked + 1
        view = service.get_state(sid)
        assert [m["text"] for m in view.transcript if m["role"] == "patient"] == ["I have had a cough for 5 days", "no"]
    finally:
        srv.stop()
        reset_connection()
        get_settings.cache_clear()


def test_unconsented_sessions_are_bounded_in_memory():
    from chatdoc.service import build_service

    service = build_service()
    service.pending_max = 3
    ids = [service.start_consultation().session_id for _ in range(5)]
    assert list(service._pending) == ids[-3:]
    service._pending[ids[-1]]["created"] -= service.pending_ttl_s + 1
    service.start_consultation()
    assert ids[-1] not in service._pending
    assert build_service()._pending == {}  # process state belongs to the object, not the module


def test_a_missing_configured_adapter_falls_back_to_the_base_model(monkeypatch, tmp_path):
    """The shipped default adapter may be absent (another adapters dir): new consultations use the base
    model instead of failing; an explicit choice is kept as given."""
    from chatdoc.config import get_settings
    from chatdoc.service import build_service

    service = build_service()  # no activate_adapter() choice in effect
    monkeypatch.setenv("CHATDOC_ADAPTERS_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert get_settings().adapters.active  # the default config names one
        assert service._resolve_adapter(...) is None
        assert service._resolve_adapter("explicit") == "explicit"
    finally:
        monkeypatch.delenv("CHATDOC_ADAPTERS_DIR")
        get_settings.cache_clear()
    assert service._resolve_adapter(...) == get_settings().adapters.active  # present in adapters/: used


@dataclass
class _Result:
    text: str
    new_tokens: int = 8


class _FakeBackend:
    """Words questions instantly and records which thread asked; runs ``during`` inside the first call."""

    def __init__(self, during):
        self.during = during
        self.callers: list[str] = []

    def build_prompt(self, system, turns, max_new_tokens=None) -> str:
        return system

    def generate(self, request) -> _Result:
        self.callers.append(threading.current_thread().name)
        if len(self.callers) == 1:
            self.during()
        return _Result("How long have you had the cough?")


def test_compare_words_with_the_model_for_its_own_runs_only(svc):
    """A comparison turns model wording on through the graph's run context: the process settings stay as
    they are, and a patient's turn in the same process, meanwhile, is worded from the templates."""
    from chatdoc.config import get_settings
    from chatdoc.service import build_service

    seen: dict = {}

    def patient_turn_meanwhile():
        seen["setting"] = get_settings().dialogue.use_model_wording
        t = threading.Thread(target=lambda: seen.setdefault("reply", service.send_message(sid, "I have a cough")),
                             name="patient")
        t.start()
        t.join(120)

    backend = _FakeBackend(patient_turn_meanwhile)
    service = build_service(backend=backend)  # one object, one model: the lab and the patient share both
    sid = service.start_consultation().session_id
    service.record_consent(sid)
    comp = service.compare(["I have had a cough for 5 days"], [None])
    assert backend.callers and "patient" not in backend.callers  # the comparison used the model, the patient did not
    assert comp.rows[0].replies[0].text
    assert seen["setting"] is False and get_settings().dialogue.use_model_wording is False
    assert seen["reply"].source == "template" and seen["reply"].reply.endswith("?")
    assert service.send_message(sid, "no").source == "template"  # and after the comparison
