"""Dialogue tests through the service: real Redis (chatdoc_redis_env), real redaction and safety, template
wording. Tests of the graph alone (test_graph.py) and of extraction (test_extract.py) need none of these."""

import pytest


@pytest.fixture
def svc(svc, monkeypatch):
    """The shared template-wording service (tests/fixtures_redis.py), with at most 10 questions."""
    from chatdoc.config import get_settings

    monkeypatch.setenv("CHATDOC_DIALOGUE_MAX_QUESTIONS", "10")
    get_settings.cache_clear()
    return svc
