"""Dialogue tests: real Redis (chatdoc_redis_env), real redaction and safety; template wording unless a
test asks for the real model (``model_wording`` fixture)."""

import pytest


@pytest.fixture
def svc(chatdoc_redis_env, monkeypatch):
    from chatdoc.config import get_settings

    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
    monkeypatch.setenv("CHATDOC_DIALOGUE_MAX_QUESTIONS", "10")
    get_settings.cache_clear()
    from chatdoc import service

    yield service
    get_settings.cache_clear()
