"""``chatdoc redact`` (stdin -> redacted stdout, ``--json`` for entities) and ``chatdoc eval pii``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from chatdoc.commands._util import emit, fail, service, service_errors


def redact(
    text: str = typer.Option(None, "--text", help="Text to redact (default: read standard input)."),
    as_json: bool = typer.Option(False, "--json", help="Entities (type, span, score, placeholder) and text."),
) -> None:
    """Redact identifiers from text on standard input; print the redacted text."""
    src = text if text is not None else sys.stdin.read()
    with service_errors():
        red = service().redact(src)
    if as_json:
        emit({"text": red.text, "entities": [e.model_dump() for e in red.entities]}, True)
    else:
        typer.echo(red.text, nl=not red.text.endswith("\n"))


def eval_pii(
    jsonl: Path = typer.Option(None, "--jsonl", help="Dev set: JSON lines with text, spans, keep."),
    as_json: bool = typer.Option(False, "--json"),
    examples: int = typer.Option(0, "--examples", min=0, help="Also list up to N misses / clobbered keeps."),
    build_devset: bool = typer.Option(False, "--build-devset", help="(Re)build the synthetic dev set and exit."),
    out: Path = typer.Option(None, "--out", help="With --build-devset: where to write it (default: the shipped file)."),
    seed: int = typer.Option(20240611, "--seed", help="With --build-devset: random seed."),
) -> None:
    """Per-type precision/recall/F2, identifier recall, clinical retention and latency of redaction."""
    if build_devset:
        from chatdoc.tools.eval import pii_devset

        target = out or pii_devset.OUT
        n = pii_devset.write(target, seed)
        typer.echo(f"wrote {n} examples to {target}")
        return
    if jsonl is None:
        fail("give the dev set with --jsonl FILE (or build one with --build-devset)")
    from chatdoc.tools.eval.pii import EvalDataError, load_jsonl, score

    try:
        rows = load_jsonl(jsonl)
    except EvalDataError as e:
        fail(str(e))
    from chatdoc.privacy.allowlist import AllowListError
    from chatdoc.privacy.engine import PrivacyEngineError
    from chatdoc.privacy.redactor import get_redactor

    try:  # the evaluation measures the privacy library itself (placeholder state per sentence)
        redactor = get_redactor()
    except (AllowListError, PrivacyEngineError) as e:
        fail(str(e))
    res = score(redactor, rows, keep_examples=examples)
    if as_json:
        emit(res, True)
        return
    lat = res["latency_ms"]
    typer.echo(f"examples: {res['examples']}  identifiers: {res['identifiers']}  keep spans: {res['keep_spans']}")
    typer.echo(f"identifier recall: {res['identifier_recall']:.4f}  clinical retention: {res['clinical_retention']:.4f}")
    typer.echo(f"latency ms/message: p50 {lat['p50']}  p95 {lat['p95']}  mean {lat['mean']}")
    typer.echo(f"{'type':<14}{'gold':>6}{'pred':>6}{'prec':>8}{'recall':>8}{'F2':>8}")
    for t, m in res["per_type"].items():
        typer.echo(f"{t:<14}{m['gold']:>6}{m['predicted']:>6}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f2']:>8.3f}")
    typer.echo(f"match rule: {res['match_rule']}")
    for x in res.get("missed", []):
        typer.echo(f"MISSED {x['type']}: {x['redacted']}")
    for x in res.get("clobbered_keep", []):
        typer.echo(f"CLOBBERED {x['keep']!r}: {x['redacted']}")
