"""Dialogue tests through the service: real Redis (chatdoc_redis_env), real redaction and safety, template
wording. Tests of the graph alone (test_graph.py) and of extraction (test_extract.py) need none of these."""

import pytest


@pytest.fixture
def svc(chatdoc_redis_env, monkeypatch):
    from chatdoc.config import get_settings

    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "false")
    monkeypatch.setenv("CHATDOC_DIALOGUE_MAX_QUESTIONS", "10")
    get_settings.cache_clear()
    from chatdoc.service import build_service

    yield build_service()
    get_settings.cache_clear()
