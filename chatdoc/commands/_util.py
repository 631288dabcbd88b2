"""Small helpers shared by the command modules: the process's service, output, clean failures (never a traceback)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from chatdoc.service import Consultations

_service: Consultations | None = None


def service() -> Consultations:
    """The one :class:`~chatdoc.service.Consultations` of this CLI process (built on first use)."""
    global _service
    if _service is None:
        from chatdoc.service import build_service

        _service = build_service()
    return _service


@contextmanager
def service_errors() -> Iterator[None]:
    """A ServiceError inside the block ends the command with its message (exit code 1)."""
    from chatdoc.service import ServiceError

    try:
        yield
    except ServiceError as e:
        fail(e.message)


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON when asked, else ``text`` (or a readable dump of obj)."""
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
    elif text is not None:
        typer.echo(text)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            typer.echo(f"{k}: {v if not isinstance(v, (dict, list)) else json.dumps(v, default=str)}")
    else:
        typer.echo(str(obj))


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"chatdoc: {message}", err=True)
    raise typer.Exit(code)


def read_text_arg(text: str | None, use_stdin: bool, what: str = "--text") -> str:
    if use_stdin:
        return sys.stdin.read()
    if text is None:
        fail(f"give {what} or --stdin")
    return text
