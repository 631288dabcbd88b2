"""``chatdoc triage --text|--jsonl`` and ``chatdoc eval triage --cases FILE``."""

from __future__ import annotations

from pathlib import Path

import typer

from chatdoc.commands._util import emit, fail, service, service_errors


def _row_text(row: dict) -> str:
    fired = ", ".join(f"{f['id']}[{f['level']}] \"{f['evidence']}\" (turn {f['turn']}, {f['start']}-{f['end']})"
                      for f in row["fired"]) or "none (default level)"
    crisis = f"  CRISIS: {row['crisis_kind']}" if row.get("crisis") else ""
    return f"{row['id']}: {row['level']}{crisis}\n  rules: {fired}"


def triage(
    text: str = typer.Option(None, "--text", help="One patient message."),
    jsonl: Path = typer.Option(None, "--jsonl", help='File of {"id", "text"} or {"id", "turns": [...]} lines.'),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Triage level, fired red-flag rules with evidence spans, and crisis flag."""
    if (text is None) == (jsonl is None):
        fail("give exactly one of --text or --jsonl")
    if text is not None:
        cases = [{"id": "text", "turns": [text]}]
    else:
        from chatdoc.tools.eval.triage import CaseError, read_cases

        try:
            cases = read_cases(jsonl)
        except CaseError as e:
            fail(str(e))
    svc = service()
    rows = []
    with service_errors():
        for c in cases:
            r = svc.triage(c["turns"], c.get("profile"))
            rows.append({"id": c["id"], "level": r.level, "crisis": r.crisis, "crisis_kind": r.crisis_kind,
                         "fired": [f.model_dump(exclude={"all_evidence", "source", "concepts"}) for f in r.fired],
                         "vitals": r.vitals, "age_years": r.age_years, "pregnant": r.pregnant, "negated": r.negated})
    if as_json:
        emit(rows[0] if text is not None else rows, True)
    else:
        typer.echo("\n".join(_row_text(r) for r in rows))


def eval_triage(
    cases: Path = typer.Option(..., "--cases", help="JSONL cases with an \"expected\" level."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accuracy, emergency recall, under/over-triage, confusion matrix, per-turn latency p50/p95."""
    from chatdoc.safety import RulesError
    from chatdoc.safety.nlp import get_nlp
    from chatdoc.safety.rules import get_rules
    from chatdoc.tools.eval.triage import CaseError, format_report, metrics, read_cases, run_cases

    try:
        items = read_cases(cases, require_expected=True)
        get_nlp()  # load once before timing
        get_rules()
        m = metrics(run_cases(items))
    except (CaseError, RulesError) as e:
        fail(str(e))
    emit(m, as_json, text=format_report(m))
