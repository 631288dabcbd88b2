"""``chatdoc chat``, ``chatdoc sessions list|show|delete``, ``chatdoc summarize``, ``chatdoc personas list``.

``chatdoc chat --session ID --message TEXT [--consent] [--json]`` runs ONE turn per process with the
state in Redis, so a script can drive a consultation across processes. Without ``--session`` a new
session id is made and printed; without consent nothing is stored and the reply asks for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from chatdoc.commands._util import emit, fail, service, service_errors

if TYPE_CHECKING:
    from chatdoc.service import TurnReply

sessions_app = typer.Typer(help="List, show and delete stored consultations.", no_args_is_help=True)
personas_app = typer.Typer(help="Personas available for consultations.", no_args_is_help=True)

_REPLY_FIELDS = ("session_id", "reply", "banner", "phase", "triage_level", "red_flags", "crisis", "awaiting_consent",
                 "questions_asked", "done")


def _reply_dict(r: TurnReply) -> dict:
    d = r.model_dump()
    return {k: d[k] for k in _REPLY_FIELDS}


def _print_reply(r: TurnReply) -> None:
    if r.banner:
        typer.echo(f"!! {r.banner}")
    typer.echo(r.reply)


def chat(
    session: str = typer.Option(None, "--session", help="Continue this consultation (one turn per process)."),
    message: str = typer.Option(None, "--message", help="One patient message; omit for an interactive chat."),
    persona: str = typer.Option(None, "--persona", help="Persona for a new consultation (see personas list)."),
    consent: bool = typer.Option(False, "--consent", help="Record consent (idempotent); nothing is stored without it."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A consultation: interactive, or one turn per process with --message."""
    from chatdoc.service import ServiceError, TurnReply

    svc = service()
    with service_errors():
        if message is None and session is None:
            return _interactive(persona)
        start = None
        if session is None:
            start = svc.start_consultation(persona)
            session = start.session_id
        if not consent:
            try:
                svc.get_state(session)
                stored = True
            except ServiceError as e:
                if e.code != "not_found":
                    raise
                stored = False
            if not stored:  # not consented (in any process): store nothing, ask for consent
                text = start.consent_text if start else svc.consent_text()
                r = TurnReply(session_id=session, reply=text + " Re-run with --consent to agree.",
                              phase="consent", awaiting_consent=True)
                if as_json:
                    emit(_reply_dict(r), True)
                else:
                    typer.echo(f"session: {session}")
                    _print_reply(r)
                return
        greeting = svc.record_consent(session, persona=persona) if consent else None
        r = svc.send_message(session, message) if message is not None else greeting
    if as_json:
        out = _reply_dict(r)
        if greeting is not None and message is not None:
            out["greeting"] = greeting.reply
        emit(out, True)
    else:
        typer.echo(f"session: {r.session_id}")
        _print_reply(r)


def _interactive(persona: str | None) -> None:
    from chatdoc.service import ServiceError

    svc = service()
    start = svc.start_consultation(persona)
    typer.echo(f"session: {start.session_id}\n{start.persona.display_name}\n\n{start.consent_text}")
    ans = typer.prompt("Type 'yes' to agree", default="no")
    if ans.strip().lower() not in ("y", "yes", "i agree", "agree", "ok"):
        typer.echo("Nothing was stored. Goodbye.")
        return
    r = svc.record_consent(start.session_id)
    _print_reply(r)
    while not r.done:
        try:
            text = typer.prompt("you")
        except (EOFError, typer.Abort):
            break
        if text.strip().lower() in ("/end", "/quit", "/exit"):
            break
        try:
            r = svc.send_message(start.session_id, text)
        except ServiceError as e:
            typer.echo(f"chatdoc: {e.message}", err=True)
            continue
        _print_reply(r)
    if not r.done:
        s = svc.end_consultation(start.session_id)
        typer.echo("\n" + s.lay_text)


@sessions_app.command("list")
def sessions_list(
    status: str = typer.Option(None, "--status"),
    triage: str = typer.Option(None, "--triage"),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Consultations, most urgent first."""
    with service_errors():
        rows = service().list_consultations(status, triage, limit)
    if as_json:
        emit([m.model_dump() for m in rows], True)
        return
    for m in rows:
        flag = "!" if m.flagged else " "
        typer.echo(f"{flag} {m.id}  {m.triage_level:<9} {m.status:<9} {m.persona or '-':<12} {m.title}")
    if not rows:
        typer.echo("no consultations")


@sessions_app.command("show")
def sessions_show(session_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Metadata, redacted transcript and structured history of one consultation."""
    with service_errors():
        v = service().get_state(session_id)
    if as_json:
        emit(v.model_dump(), True)
        return
    typer.echo(f"session: {v.session_id}  phase: {v.phase}  triage: {v.triage.get('level')}  persona: {v.persona}")
    for m in v.transcript:
        typer.echo(f"{'Patient' if m['role'] == 'patient' else 'Assistant'}: {m['text']}")


@sessions_app.command("delete")
def sessions_delete(session_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Erase every stored trace of a consultation."""
    with service_errors():
        n = service().delete_consultation(session_id)
    emit({"session_id": session_id, "keys_removed": n}, as_json, f"deleted {n} keys")


def summarize(
    session: str = typer.Option(None, "--session"),
    transcript: Path = typer.Option(None, "--transcript", help="Doctor:/Patient: lines or [doctor]/[patient] tags."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Staff + lay summary of a stored consultation or of a transcript file."""
    if (session is None) == (transcript is None):
        fail("give exactly one of --session or --transcript")
    with service_errors():
        if session is not None:
            s = service().summarize(session)
        else:
            try:
                text = transcript.read_text(encoding="utf-8")
            except OSError as e:
                fail(f"cannot read {transcript}: {e.strerror}")
            s = service().summarize_transcript(text)
    emit(s.model_dump(), as_json, f"{s.text}\n\nLay summary: {s.lay_text}")


@personas_app.command("list")
def personas_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Available personas."""
    rows = [p.model_dump() for p in service().list_personas()]
    emit(rows, as_json, "\n".join(f"{p['name']:<14} {p['display_name']} - {p['description']}" for p in rows))
