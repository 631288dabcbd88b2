"""``chatdoc serve [--host H] [--port P]`` and ``chatdoc users hash``."""

from __future__ import annotations

import sys

import typer

from chatdoc.commands._util import fail, service

users_app = typer.Typer(help="Staff and researcher accounts.", no_args_is_help=True)


def serve(
    host: str = typer.Option(None, "--host", help="Address to bind (default ui.host, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", min=0, max=65535, help="Port (default ui.port, 7860)."),
    no_warm: bool = typer.Option(False, "--no-warm", help="Load the model on first use, not at start."),
) -> None:
    """Start the web app: patients at /, staff at /staff, researchers at /lab."""
    from chatdoc.ui import serve as run

    try:
        run(host=host, port=port, warm=not no_warm, service=service())
    except OSError as e:
        fail(f"cannot start the web server: {e.strerror or e}")


@users_app.command("hash")
def hash_cmd(
    rounds: int = typer.Option(12, "--rounds", min=4, max=16, help="bcrypt cost factor."),
) -> None:
    """Make a bcrypt hash for ui.users[].password_hash. The password is read from stdin or a prompt."""
    from chatdoc.ui.auth import hash_password

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        typer.echo(hash_password(password, rounds=rounds))
    except ValueError as e:
        fail(str(e))
