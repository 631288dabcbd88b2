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


def test_password_hash_roundtrip_and_roles(monkeypatch, chatdoc_redis_env):
    from chatdoc.config import get_settings
    from chatdoc.ui.auth import Auth, check_password, hash_password, role_of

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
        auth = Auth()

        def ok(user, pw, view):
            return auth.login(user, pw, f"10.0.0.{len(user)}", view)[0] == "ok"

        assert ok("ann", "s3cret-pw", "staff") and not ok("ann", "wrong", "staff") and not ok("bob", "lab-pw", "staff")
        assert ok("bob", "lab-pw", "researcher") and not ok("ann", "s3cret-pw", "researcher")
        assert not ok("eve", "x", "researcher")
        result, (token, sess) = auth.login("ann", "s3cret-pw", "10.0.0.9", "staff")
        assert result == "ok" and auth.user_for(token, "staff") == "ann" and auth.user_for(token, "researcher") is None
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


def test_throttle_backs_off_per_user_and_per_address(redis_client, monkeypatch):
    import time

    from chatdoc.ui.auth import LoginThrottle

    t = LoginThrottle(lambda: redis_client, "t1", max_failures=3, backoff=10, backoff_max=60)
    for _ in range(3):
        assert t.retry_after("ann", "1.1.1.1") == 0
        t.record("ann", "1.1.1.1", ok=False)
    assert 9 < t.retry_after("ann", "9.9.9.9") <= 10  # the user name is locked from any address
    assert 9 < t.retry_after("bob", "1.1.1.1") <= 10  # and the address for any user name
    assert t.retry_after("bob", "2.2.2.2") == 0
    t.record("ann", "1.1.1.1", ok=False)  # one more failure doubles the wait
    assert 19 < t.retry_after("ann", "3.3.3.3") <= 20
    # a second throttle on the same Redis (another replica) sees the same counters
    assert 19 < LoginThrottle(lambda: redis_client, "t1", 3, 10, 60).retry_after("ann", "4.4.4.4") <= 20
    keys = [k.decode() for k in redis_client.scan_iter("t1:*")]
    assert keys and not any("ann" in k or "1.1.1.1" in k for k in keys)  # digests, not names or addresses
    assert all(0 < redis_client.ttl(k) <= 60 for k in keys)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 25)
    assert t.retry_after("ann", "3.3.3.3") == 0


def test_sessions_expire_when_idle_and_at_the_absolute_limit(redis_client, monkeypatch):
    import time

    from chatdoc.ui.auth import SessionStore

    monkeypatch.setenv("CHATDOC_UI_USERS", json.dumps([{"username": "ann", "password_hash": "x", "role": "staff"}]))
    from chatdoc.config import get_settings

    get_settings.cache_clear()
    try:
        store = SessionStore(lambda: redis_client, "s1", idle_s=1.0, max_s=30)
        token, sess = store.create("ann", "staff")
        assert token not in str(list(redis_client.scan_iter("s1:*")))  # only a digest of the token is stored
        for _ in range(3):  # used every 0.6 s: the idle limit never passes
            time.sleep(0.6)
            assert store.get(token).user == "ann"
        time.sleep(1.2)
        assert store.get(token) is None  # idle
        token, _ = store.create("ann", "staff")
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + 31)
        assert store.get(token) is None  # absolute lifetime
        token, _ = store.create("ann", "staff")
        store.delete(token)
        assert store.get(token) is None
    finally:
        get_settings.cache_clear()
