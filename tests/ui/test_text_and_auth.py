"""Fast checks of the UI's pure helpers: escaping, input limits, password hashing, roles, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatdoc.ui.text import InputProblem, escape_chat, escape_html, validate_message

XSS = "<img src=x onerror=alert(1)>"


def test_escape_html_and_chat_neutralise_markup():
    assert "<" not in escape_html(XSS) and "&lt;img" in escape_html(XSS)
    chat = escape_chat(XSS + " **bold** [link](http://e.x) ![i](x.png) $x$")
    assert "<img" not in chat
    for raw in ("**", "](", "![", "$x$"):
        assert raw not in chat
    # the Markdown pass must not break the HTML entities it follows
    assert "&lt;" in chat and "&gt;" in chat


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "type a message"),
        ("   \n ", "type a message"),
        (None, "type a message"),
        (123, "Only typed text"),
        ({"text": "hi", "files": ["a.png"]}, "Only typed text"),
        ("x" * 2001, "too long"),
        ("hello\x00world", "not text"),
    ],
)
def test_validate_message_refuses_with_a_clear_message(value, fragment):
    with pytest.raises(InputProblem) as e:
        validate_message(value, 2000)
    assert fragment.lower() in str(e.value).lower()


def test_validate_message_keeps_good_text():
    assert validate_message("  I have a cough\r\nsince Monday ", 2000) == "I have a cough\nsince Monday"
    assert validate_message({"text": "hi", "files": []}, 10) == "hi"


def test_password_hash_roundtrip_and_roles(monkeypatch):
    from chatdoc.config import get_settings
    from chatdoc.ui.auth import check_password, hash_password, make_auth, role_of

    h = hash_password("s3cret-pw", rounds=4)
    assert h.startswith("$2") and check_password("s3cret-pw", h) and not check_password("wrong", h)
    users = [
        {"username": "ann", "password_hash": h, "role": "staff"},
        {"username": "bob", "password_hash": hash_password("lab-pw", rounds=4), "role": "researcher"},
    ]
    monkeypatch.setenv("CHATDOC_UI_USERS", json.dumps(users))
    get_settings.cache_clear()
    try:
        assert role_of("ann") == "staff" and role_of("bob") == "researcher" and role_of("eve") is None
        staff, lab = make_auth("staff"), make_auth("researcher")
        assert staff("ann", "s3cret-pw") and not staff("ann", "wrong") and not staff("bob", "lab-pw")
        assert lab("bob", "lab-pw") and not lab("ann", "s3cret-pw") and not lab("eve", "x")
    finally:
        monkeypatch.delenv("CHATDOC_UI_USERS")
        get_settings.cache_clear()


def test_cli_users_hash_reads_stdin():
    import bcrypt

    r = subprocess.run(
        [sys.executable, "-m", "chatdoc.cli", "users", "hash", "--rounds", "4"],
        input="pw-from-stdin\n", capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    h = r.stdout.strip()
    assert bcrypt.checkpw(b"pw-from-stdin", h.encode())
    r = subprocess.run(
        [sys.executable, "-m", "chatdoc.cli", "users", "hash"], input="\n", capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "empty" in r.stderr
