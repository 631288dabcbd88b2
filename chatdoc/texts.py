"""Patient-facing wording from ``configs/texts.yaml`` (one reviewed file; see its header).

A base module (like ``config``): the dialogue, the safety library and the service all speak through it,
so it sits below all of them and imports only ``chatdoc.config``.

    text("dialogue.close")                       -> the sentence
    text("advice.text", body=..., checks=..., subject=...)  -> placeholders filled with str.format

The file is read once per process (and again when it changes on disk). A missing key or placeholder
raises :class:`TextsError` naming it, so an edit that breaks a text fails loudly, not in front of a patient.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml


class TextsError(ValueError):
    """configs/texts.yaml is missing, invalid, or lacks a key or placeholder the code uses."""


def texts_path() -> Path:
    from chatdoc.config import CONFIG_DIR

    return Path(CONFIG_DIR) / "texts.yaml"


@lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TextsError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise TextsError(f"{path} must hold a mapping of texts")
    return data


def texts() -> dict[str, Any]:
    p = texts_path()
    try:
        return _load(str(p), p.stat().st_mtime)
    except FileNotFoundError:
        raise TextsError(f"patient texts file not found: {p}") from None


def text(key: str, **fmt: Any) -> str:
    """The text at dotted ``key`` with ``fmt`` filled in."""
    node: Any = texts()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise TextsError(f"no text {key!r} in {texts_path()}")
        node = node[part]
    if not isinstance(node, str):
        raise TextsError(f"{key!r} in {texts_path()} is not a text")
    try:
        return node.format(**fmt)
    except (KeyError, IndexError, ValueError) as e:
        raise TextsError(f"text {key!r}: placeholder {e} is not filled in") from None


def has_text(key: str) -> bool:
    node: Any = texts()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, str)
