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


# ---------------------------------------------------------------------------------------------- audit log
# Staff actions and log-ins go to their own append-only JSON-lines file (<data_dir>/audit.log or
# security.audit_log), written directly and not through the scrubbers: the consultation id and the user
# name must stay readable there (the scrubber would turn an id into a placeholder). Callers never pass
# patient text or passwords: only the fields below.
_audit_lock = None


def audit(action: str, *, user: str | None = None, address: str | None = None, session_id: str | None = None,
          result: str = "ok", **extra: object) -> None:
    """One audit record: time, action, user, client address, consultation id, result (+ small extras)."""
    import json
    import os
    import threading
    import time

    from chatdoc.config import get_settings

    global _audit_lock
    if _audit_lock is None:
        _audit_lock = threading.Lock()
    s = get_settings()
    path = s.path(s.security.audit_log) if s.security.audit_log else s.data_path / "audit.log"
    rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ts": round(time.time(), 3),
           "action": action, "user": user, "address": address, "session_id": session_id, "result": result}
    rec.update({k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool)) or v is None})
    line = json.dumps(rec, ensure_ascii=False) + "\n"
    try:
        with _audit_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
    except OSError as e:  # the audit trail must not take the app down; say so loudly in the main log
        logger.error("audit log not writable ({}): {} {}", type(e).__name__, action, result)
    logger.info("audit: {} by {} from {}: {}", action, user or "-", address or "-", result)


__all__ = ["logger", "setup_logging", "add_scrubber", "audit"]
