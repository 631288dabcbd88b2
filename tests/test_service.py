"""chatdoc.service contract: pydantic models, ServiceError codes, storage failure and retry."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def svc(chatdoc_redis_env, monkeypatch):
    from chatdoc.config import get_settings

    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
    get_settings.cache_clear()
    from chatdoc import service

    yield service
    get_settings.cache_clear()


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
    from chatdoc.service import ServiceError

    port = _free_port()
    srv = EmbeddedRedis(tmp_path / "r", port=port).start()
    try:
        monkeypatch.setenv("CHATDOC_REDIS_URL", srv.url)
        monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
        monkeypatch.setenv("CHATDOC_REDIS_SOCKET_TIMEOUT", "1")
        get_settings.cache_clear()
        reset_connection()
        from chatdoc import service

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


def test_unconsented_sessions_are_bounded_in_memory(monkeypatch):
    from chatdoc import service

    monkeypatch.setattr(service, "PENDING_MAX", 3)
    monkeypatch.setattr(service, "_pending", {})
    ids = [service.start_consultation().session_id for _ in range(5)]
    assert len(service._pending) == 3
    assert ids[-1] in service._pending and ids[0] not in service._pending
    service._pending[ids[-1]]["created"] -= service.PENDING_TTL_S + 1
    service.start_consultation()
    assert ids[-1] not in service._pending


def test_a_missing_configured_adapter_falls_back_to_the_base_model(monkeypatch, tmp_path):
    """The shipped default adapter may be absent (another adapters dir): new consultations use the base
    model instead of failing; an explicit choice is kept as given."""
    from chatdoc import service
    from chatdoc.config import get_settings

    monkeypatch.setattr(service, "_default_adapter", ...)  # no activate_adapter() choice in effect
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
