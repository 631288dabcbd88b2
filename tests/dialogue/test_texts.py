"""configs/texts.yaml: every patient-facing text the code asks for exists and fills in; errors name the key."""

from __future__ import annotations

import re

import pytest

from chatdoc.texts import TextsError, has_text, text, texts

REPO_CODE = ["chatdoc/dialogue", "chatdoc/safety", "chatdoc/service.py"]


def _keys(node, prefix=""):
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _keys(v, key + ".")
        else:
            yield key, v


def test_every_text_is_a_string_and_formats():
    fill = {"days": 30, "urgent_service": "NHS 111", "emergency_number": "999", "emergency_department": "A&E",
            "safety_net": "SN", "contacts": "C", "title": "", "question": "Q?", "body": "B", "checks": "K",
            "subject": "your", "complaint": "x", "onset": "o", "duration": "d", "severity": 5, "items": "i",
            "url": "https://example.org", "value": "v"}
    keys = dict(_keys(texts()))
    assert len(keys) > 40
    for key, value in keys.items():
        assert isinstance(value, str) and value.strip() == value and "  " not in value, key
        assert "{" not in text(key, **fill), key


def test_the_keys_the_code_names_exist():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    used = set()
    for where in REPO_CODE:
        p = root / where
        for f in [p] if p.is_file() else p.rglob("*.py"):
            used |= set(re.findall(r"""(?:text|wording)\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""", f.read_text()))
    assert used and all(has_text(k) for k in used), sorted(k for k in used if not has_text(k))


def test_missing_key_or_placeholder_is_a_readable_error():
    with pytest.raises(TextsError, match="no text 'dialogue.nope'"):
        text("dialogue.nope")
    with pytest.raises(TextsError, match="placeholder"):
        text("consent")
    assert "kept for 30 days" in text("consent", days=30.0)
