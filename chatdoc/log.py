"""Logging with loguru: human-readable by default, JSON lines with ``log.json_lines``.

Patient text must never be logged raw. Code logs metadata (ids, sizes, timings); in addition every
record passes through the registered scrubbers (the privacy package registers its redactor) before
any sink sees it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from loguru import logger

_scrubbers: list[Callable[[str], str]] = []


def add_scrubber(fn: Callable[[str], str]) -> None:
    """Register a text scrubber applied to every log message before it is written."""
    if fn not in _scrubbers:
        _scrubbers.append(fn)


def _patch(record) -> None:
    for fn in _scrubbers:
        record["message"] = fn(record["message"])


def setup_logging(level: str | None = None, json_lines: bool | None = None, file=None) -> None:
    from chatdoc.config import get_settings

    cfg = get_settings().log
    level = level or cfg.level
    json_lines = cfg.json_lines if json_lines is None else json_lines
    logger.remove()
    logger.configure(patcher=_patch)
    fmt = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> <cyan>{name}</cyan> {message} {extra}"
    logger.add(sys.stderr, level=level, serialize=json_lines, format=fmt if not json_lines else "{message}")
    target = file or cfg.file
    if target:
        logger.add(str(target), level=level, serialize=json_lines, rotation="10 MB")


__all__ = ["logger", "setup_logging", "add_scrubber"]
