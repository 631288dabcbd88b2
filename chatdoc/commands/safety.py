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
    cases: Path = typer.Option(None, "--cases", help="JSONL cases with an \"expected\" level."),
    split: str = typer.Option(None, "--set", help="dev | test | all: the frozen evaluation sets in tests/evalsets, "
                              "a table per source (test shows no per-case errors)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accuracy, emergency recall, under/over-triage, confusion matrix, per-turn latency p50/p95; with --set, per source."""
    from chatdoc.safety import RulesError
    from chatdoc.safety.rules import get_rules
    from chatdoc.tools.eval.triage import CaseError, format_report, format_sources, metrics, read_cases, run_cases

    if (cases is None) == (split is None):
        fail("give exactly one of --cases or --set")
    if split is not None and split not in ("dev", "test", "all"):
        fail("--set must be dev, test or all")
    try:
        get_rules()
        _warm_up()
        if cases is not None:
            m = metrics(run_cases(read_cases(cases, require_expected=True)))
            emit(m, as_json, text=format_report(m))
            return
        from chatdoc.tools.eval.sets import triage_cases

        items, problems = triage_cases(split)  # type: ignore[arg-type]
        rows = run_cases(items)
        by: dict[str, list] = {}
        for c, r in zip(items, rows, strict=True):
            by.setdefault(c.get("origin", "?"), []).append(r)
        table = {o: metrics(rs) for o, rs in sorted(by.items())}
        table["ALL"] = metrics(rows)
        if split == "test":
            for v in table.values():
                v.pop("errors", None)
        out = {"set": split, "sources": table, "skipped": problems}
    except (CaseError, RulesError) as e:
        fail(str(e))
    emit(out, as_json, text=format_sources(out, show_errors=split != "test"))


def _warm_up() -> None:
    """Load the analysis's models once before anything is timed."""
    from chatdoc.clinical.analyse import analyse_turn

    analyse_turn("warm up: I have a headache", 0)


def eval_findings(
    split: str = typer.Option("dev", "--set", help="dev | test | all (the frozen split of tests/evalsets)."),
    semantic: bool = typer.Option(True, "--semantic/--no-semantic", help="Semantic matching on (as configured) or off."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-assertion precision/recall, span recall, attribute accuracy and per-turn time of the turn analysis."""
    from chatdoc.tools.eval.findings_eval import evaluate, format_report
    from chatdoc.tools.eval.sets import FINDINGS_FILES, SetError, load

    if split not in ("dev", "test", "all"):
        fail("--set must be dev, test or all")
    cases, problems = [], []
    for name in FINDINGS_FILES:
        try:
            rows, bad = load(name, split)  # type: ignore[arg-type]
        except SetError as e:
            problems.append(str(e))
            continue
        cases += [r for r in rows if r.get("findings")]
        problems += bad
    if not cases:
        fail("no annotated cases found: " + "; ".join(problems))
    _warm_up()
    m = evaluate(cases, semantic=semantic)
    m["skipped"] = problems
    emit(m, as_json, text=format_report(m) + (f"\nskipped: {len(problems)} bad lines" if problems else ""))
