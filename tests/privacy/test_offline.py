"""Zero network: building the analyzer and analysing text must never open a connection."""

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def guard(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard)
    monkeypatch.setattr(socket, "getaddrinfo", guard)
    monkeypatch.setattr(socket, "create_connection", guard)
    yield attempts
    assert attempts == []


def test_build_and_analyse_without_network(no_network):
    import tldextract

    from chatdoc.config import get_settings
    from chatdoc.privacy.allowlist import load_allow_list
    from chatdoc.privacy.engine import build_analyzer
    from chatdoc.privacy.redactor import Redactor

    # a fresh extractor built the same way, to prove the snapshot path never fetches
    fresh = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    assert fresh("mail.example.co.uk").suffix == "co.uk"
    s = get_settings()
    red = Redactor(build_analyzer(s.privacy), load_allow_list(s.path(s.privacy.allow_list_file)))
    out = red.redact("email jo@example.co.uk, see www.example.com/x or http://nhs.uk, ip 10.0.0.1, call 07700 900123")
    assert {e.type for e in out.entities} == {"EMAIL", "URL", "IP_ADDRESS", "PHONE"}


def test_shared_redactor_without_network(no_network, redactor):
    out = redactor.redact("my name is john smith, john@smith-family.org")
    assert out.text == "my name is <PERSON_1>, <EMAIL_1>"
