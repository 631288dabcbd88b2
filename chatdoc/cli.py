"""The ``chatdoc`` command line: one Typer app over one :class:`chatdoc.service.Consultations` per process.

The commands live in ``chatdoc/commands/<area>.py`` as plain functions and sub-apps; the list below is
the whole CLI (README's CLI table). Heavy and tooling imports stay inside the command functions.
"""

from __future__ import annotations

import sys

import typer

from chatdoc.commands import dialogue, evaluate, model, privacy, safety, train, ui
from chatdoc.config import ConfigError

app = typer.Typer(help="chatdoc: private multi-turn consultation assistant.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate triage, redaction, adapters, consultations and summaries.", no_args_is_help=True)
bench_app = typer.Typer(help="Speed benchmarks.", no_args_is_help=True)


@app.callback()
def _root(
    json_logs: bool = typer.Option(False, "--json-logs", help="Write logs as JSON lines."),
    log_level: str = typer.Option(None, "--log-level", help="TRACE..CRITICAL (default from config)."),
) -> None:
    from chatdoc.log import setup_logging

    setup_logging(level=log_level, json_lines=json_logs or None)


# model and adapters
app.add_typer(model.model_app, name="model")
app.command("generate")(model.generate)
app.add_typer(model.adapters_app, name="adapters")
# consultations, staff, personas
app.command("chat")(dialogue.chat)
app.add_typer(dialogue.sessions_app, name="sessions")
app.command("summarize")(dialogue.summarize)
app.add_typer(dialogue.personas_app, name="personas")
# safety and privacy
app.command("triage")(safety.triage)
app.command("redact")(privacy.redact)
# training
app.add_typer(train.train_app, name="train")
# web app and accounts
app.command("serve")(ui.serve)
app.add_typer(ui.users_app, name="users")
# evaluations and benchmarks (tooling: chatdoc/tools, imported inside the commands)
eval_app.command("triage")(safety.eval_triage)
eval_app.command("findings")(safety.eval_findings)
eval_app.command("pii")(privacy.eval_pii)
eval_app.command("adapter")(train.eval_adapter)
eval_app.command("consult")(evaluate.eval_consult)
eval_app.command("summary")(evaluate.eval_summary)
eval_app.command("conversation")(evaluate.eval_conversation)
app.add_typer(eval_app, name="eval")

bench_app.command("generate")(model.bench_generate)
bench_app.command("run")(evaluate.bench_run)

bench_app.command("dialogue")(evaluate.bench_dialogue)
bench_app.command("llm")(evaluate.bench_llm)
bench_app.command("ui")(evaluate.bench_ui)
app.add_typer(bench_app, name="bench")


def main() -> None:
    from chatdoc.memory import EmbeddedRedisError, StorageUnavailable

    try:
        app(standalone_mode=True)
    except ConfigError as e:
        typer.echo(f"chatdoc: {e}", err=True)
        sys.exit(2)
    except (EmbeddedRedisError, StorageUnavailable) as e:  # storage could not start / be reached: one line
        typer.echo(f"chatdoc: storage unavailable: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
