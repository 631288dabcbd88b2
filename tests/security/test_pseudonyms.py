"""Issue 13, finding 6: pseudonyms must not be reversible from a Redis dump.

The attack: each session's salt was stored next to the keyed hashes of its identifiers, so a dump alone
let anyone hash every date 1900-2025 (or phone / NHS number) and read the patient's value back. Now the
digests are keyed with a per-deployment secret that never goes to Redis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import stat

import pytest

from chatdoc.privacy.placeholders import PlaceholderState, normalize_value
from tests.redis_scan import dump_all

DOB = dt.date(1961, 3, 14)
FORMATS = ("{d:%d/%m/%Y}", "{d.day} {d:%B %Y}", "{d:%m/%d/%Y}", "{d:%Y-%m-%d}")  # what an attacker would try


def every_date():
    d, end, one = dt.date(1900, 1, 1), dt.date(2025, 12, 31), dt.timedelta(days=1)
    while d <= end:
        yield d
        d += one


def brute_force_dob(salt_hex: str, digests: set[str], key: bytes | None) -> set[dt.date]:
    """Dates whose digest is among ``digests``: with ``key=None`` the attacker has only the dump (salt
    and digests), so the digest is HMAC(salt, ...) as it used to be; with the deployment key, the digest
    chatdoc computes now."""
    salt = bytes.fromhex(salt_hex)
    found = set()
    for d in every_date():
        for fmt in FORMATS:
            norm = normalize_value("DOB", fmt.format(d=d))
            if key is None:
                h = hmac.new(salt, f"DOB\x1f{norm}".encode(), hashlib.sha256)
            else:
                h = hmac.new(key, salt + f"DOB\x1f{norm}".encode(), hashlib.sha256)
            if h.hexdigest()[:32] in digests:
                found.add(d)
    return found



def test_a_redis_dump_does_not_give_back_the_date_of_birth(svc, chatdoc_redis_env):
    from chatdoc.config import get_settings
    from chatdoc.memory import get_checkpointer

    sid = svc.start_consultation().session_id
    svc.record_consent(sid)
    svc.send_message(sid, f"I have a sore throat. My date of birth is {DOB:%d/%m/%Y}.")
    transcript = " ".join(m["text"] for m in svc.get_state(sid).transcript)
    assert "<DOB_1>" in transcript and "1961" not in transcript

    # what a Redis dump holds: the session's placeholder state (salt + digests) ...
    cp = get_checkpointer().get_tuple({"configurable": {"thread_id": sid, "checkpoint_ns": ""}})
    privacy = cp.checkpoint["channel_values"]["privacy"]
    salt, digests = privacy["salt"], set(privacy["digests"])
    assert "<DOB_1>" in privacy["digests"].values()
    # the attack on the dump alone finds nothing
    assert brute_force_dob(salt, digests, key=None) == set()
    # the deployment key is in no key or value, in any encoding ...
    key_path = get_settings().data_path / "pseudonym.key"
    key = bytes.fromhex(key_path.read_text().strip())
    dump = dump_all(chatdoc_redis_env)  # every key and value, base64 payloads decoded
    assert key not in dump and key.hex().encode() not in dump and key.hex().upper().encode() not in dump
    # ... and it is what the attack lacks: with it, the same search finds the date (the test can fail)
    assert brute_force_dob(salt, digests, key=key) == {DOB}


def test_key_file_is_created_private_and_reused(tmp_path):
    from chatdoc.privacy.keys import load_or_create_key

    path = tmp_path / "data" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key
    other = load_or_create_key(tmp_path / "elsewhere" / "pseudonym.key")
    assert other != key


def test_key_from_settings_env_wins_and_bad_keys_are_refused(tmp_path, monkeypatch):
    from chatdoc.config import get_settings
    from chatdoc.privacy.keys import PseudonymKeyError, deployment_key

    monkeypatch.setenv("CHATDOC_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        from_file = deployment_key()
        assert (tmp_path / "pseudonym.key").read_text().strip() == from_file.hex()
        env_key = os.urandom(32)
        monkeypatch.setenv("CHATDOC_PRIVACY_KEY", env_key.hex())
        get_settings.cache_clear()
        assert deployment_key() == env_key
        state = PlaceholderState.new()
        assert state.digest("PHONE", "07700 900123") != state.digest("PHONE", "07700 900123", key=from_file)
        assert state.digest("PHONE", "07700 900123") == state.digest("PHONE", "07700900123", key=env_key)

        monkeypatch.setenv("CHATDOC_PRIVACY_KEY", "abcd")  # 2 bytes
        get_settings.cache_clear()
        with pytest.raises(PseudonymKeyError, match="privacy.key"):
            deployment_key()
        monkeypatch.delenv("CHATDOC_PRIVACY_KEY")
        monkeypatch.setenv("CHATDOC_PRIVACY_KEY_FILE", str(tmp_path / "bad.key"))
        (tmp_path / "bad.key").write_text("not hex\n")
        get_settings.cache_clear()
        with pytest.raises(PseudonymKeyError, match="bad.key"):
            deployment_key()
    finally:
        get_settings.cache_clear()
