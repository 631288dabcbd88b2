"""``chatdoc triage --text|--jsonl`` and ``chatdoc eval triage --cases FILE``."""

from __future__ import annotations

from pathlib import Path

import typer

from chatdoc.commands._util import emit, fail


def _row_text(row: dict) -> str:
    fired = ", ".join(f"{f['id']}[{f['level']}] \"{f['evidence']}\" (turn {f['turn']}, {f['start']}-{f['end']})"
                      for f in row["fired"]) or "none (default level)"
    crisis = f"  CRISIS: {row['crisis_kind']}" if row.get("crisis") else ""
    return f"{row['id']}: {row['level']}{crisis}\n  rules: {fired}"


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @app.command("triage")
    def triage(
        text: str = typer.Option(None, "--text", help="One patient message."),
        jsonl: Path = typer.Option(None, "--jsonl", help='File of {"id", "text"} or {"id", "turns": [...]} lines.'),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Triage level, fired red-flag rules with evidence spans, and crisis flag."""
        from chatdoc.safety import RulesError, assess
        from chatdoc.safety.evaluate import CaseError, read_cases

        if (text is None) == (jsonl is None):
            fail("give exactly one of --text or --jsonl")
        try:
            cases = [{"id": "text", "turns": [text]}] if text is not None else read_cases(jsonl)
            rows = []
            for c in cases:
                r = assess(c["turns"], c.get("profile"))
                rows.append({"id": c["id"], "level": r.level, "crisis": r.crisis, "crisis_kind": r.crisis_kind,
                             "fired": [f.model_dump(exclude={"all_evidence", "source", "concepts"}) for f in r.fired],
                             "vitals": r.vitals, "age_years": r.age_years, "pregnant": r.pregnant, "negated": r.negated})
        except (CaseError, RulesError) as e:
            fail(str(e))
        if as_json:
            emit(rows[0] if text is not None else rows, True)
        else:
            typer.echo("\n".join(_row_text(r) for r in rows))

    @groups["eval"].command("triage")
    def eval_triage(
        cases: Path = typer.Option(..., "--cases", help="JSONL cases with an \"expected\" level."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Accuracy, emergency recall, under/over-triage, confusion matrix, per-turn latency p50/p95."""
        from chatdoc.safety import RulesError
        from chatdoc.safety.evaluate import CaseError, format_report, metrics, read_cases, run_cases
        from chatdoc.safety.nlp import get_nlp

        try:
            items = read_cases(cases, require_expected=True)
            get_nlp()  # load once before timing
            from chatdoc.safety.rules import get_rules

            get_rules()
            m = metrics(run_cases(items))
        except (CaseError, RulesError) as e:
            fail(str(e))
        emit(m, as_json, text=format_report(m))
