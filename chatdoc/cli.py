"""The ``chatdoc`` command line: a thin Typer shell over the Python API.

Commands live in ``chatdoc/commands/<area>.py``; each module exposes ``register(app, groups)`` and is
discovered here, so adding an area never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from chatdoc.config import ConfigError

app = typer.Typer(help="chatdoc: private multi-turn consultation assistant.", no_args_is_help=True)
groups: dict[str, typer.Typer] = {
    "eval": typer.Typer(help="Evaluate triage, redaction, adapters, consultations and summaries.", no_args_is_help=True),
}
app.add_typer(groups["eval"], name="eval")


@app.callback()
def _root(
    json_logs: bool = typer.Option(False, "--json-logs", help="Write logs as JSON lines."),
    log_level: str = typer.Option(None, "--log-level", help="TRACE..CRITICAL (default from config)."),
) -> None:
    from chatdoc.log import setup_logging

    setup_logging(level=log_level, json_lines=json_logs or None)


def _discover() -> None:
    import chatdoc.commands as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"chatdoc.commands.{mod}").register(app, groups)


_discover()


def main() -> None:
    try:
        app()
    except ConfigError as e:
        typer.echo(f"chatdoc: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
