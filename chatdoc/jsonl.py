"""Reading JSON-lines input files with errors that name the file and line (used by every evaluator and builder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: Path | str, error: type[Exception], missing: str = "file not found",
               problems: list[str] | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``("path:line", parsed object)`` for each non-blank line.

    Raises ``error("<missing>: path")`` when the file is absent and ``error("path:line: not valid JSON (...)")``
    on a bad line, so callers turn bad input into one clear message without their own parsing loop. With
    ``problems``, a bad line is reported there and skipped instead (one bad record is not fatal)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{missing}: {path}")
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if problems is None:
                raise error(f"{path}:{no}: not valid JSON ({e.msg})") from None
            problems.append(f"{path}:{no}: not valid JSON ({e.msg}), skipped")
            continue
        yield f"{path}:{no}", obj
