"""Triage evaluation: read cases, run the rule path, compute metrics. Pure functions; the CLI is thin.

Case lines (JSONL): ``{"id": ..., "text": "..."}`` or ``{"id": ..., "turns": ["...", ...]}``, plus
``"expected": "<level>"`` for evaluation (and optionally ``"profile"`` and ``"source"``).
Under-triage = predicted less urgent than expected; over-triage = more urgent.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chatdoc.jsonl import read_jsonl
from chatdoc.safety.rules import LEVELS

_RANK = {lv: i for i, lv in enumerate(LEVELS)}


class CaseError(ValueError):
    """A case file is missing or has a bad line; the message names the file and line."""


def read_cases(path: Path | str, require_expected: bool = False) -> list[dict[str, Any]]:
    p = Path(path)
    cases: list[dict[str, Any]] = []
    for where, obj in read_jsonl(p, CaseError, "case file not found"):
        cases.append(validate_case(obj, where, require_expected))
    if not cases:
        raise CaseError(f"{p}: no cases")
    return cases


def validate_case(obj: Any, where: str, require_expected: bool = False) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CaseError(f"{where}: each line must be a JSON object")
    turns = obj.get("turns")
    if turns is None and isinstance(obj.get("text"), str):
        turns = [obj["text"]]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise CaseError(f"{where}: needs \"text\" (string) or \"turns\" (non-empty list of strings)")
    exp = obj.get("expected")
    if require_expected and exp is None:
        raise CaseError(f"{where}: missing \"expected\" level")
    if exp is not None and exp not in _RANK:
        raise CaseError(f"{where}: unknown level {exp!r}; expected one of {', '.join(LEVELS)}")
    prof = obj.get("profile")
    if prof is not None and not isinstance(prof, dict):
        raise CaseError(f"{where}: \"profile\" must be an object")
    return {**obj, "id": obj.get("id", where), "turns": turns}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_cases(cases: Iterable[dict[str, Any]], assess_fn: Callable | None = None, per_turn: bool = True) -> list[dict[str, Any]]:
    """Assess each case; with ``per_turn`` the history is fed turn by turn (as in a dialogue) and each
    call is timed. Returns one row per case with predicted level, fired rules and timings (ms)."""
    from chatdoc.safety.triage import assess

    fn = assess_fn or assess
    rows = []
    for c in cases:
        turns, prof = c["turns"], c.get("profile")
        timings: list[float] = []
        steps = range(1, len(turns) + 1) if per_turn else [len(turns)]
        res = None
        for k in steps:
            t0 = time.perf_counter()
            res = fn(turns[:k], prof)
            timings.append((time.perf_counter() - t0) * 1000)
        rows.append({
            "id": c["id"], "expected": c.get("expected"), "predicted": res.level, "crisis": res.crisis,
            "fired": [{"id": f.id, "level": f.level, "evidence": f.evidence, "turn": f.turn, "start": f.start, "end": f.end}
                      for f in res.fired],
            "ms": timings,
        })
    return rows


def metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if r.get("expected")]
    n = len(scored)
    confusion = {e: {p: 0 for p in LEVELS} for e in LEVELS}
    correct = under = over = 0
    for r in scored:
        e, p = r["expected"], r["predicted"]
        confusion[e][p] += 1
        if e == p:
            correct += 1
        elif _RANK[p] > _RANK[e]:
            under += 1
        else:
            over += 1
    emerg = [r for r in scored if r["expected"] == "emergency"]
    emerg_hit = sum(1 for r in emerg if r["predicted"] == "emergency")
    self_care_to_ed = sum(1 for r in scored if r["expected"] == "self_care" and r["predicted"] == "emergency")
    ms = [t for r in rows for t in r["ms"]]
    per_level = {lv: sum(1 for r in scored if r["expected"] == lv) for lv in LEVELS}
    return {
        "cases": n,
        "per_level": per_level,
        "accuracy": correct / n if n else 0.0,
        "emergency_recall": emerg_hit / len(emerg) if emerg else 1.0,
        "under_triage_rate": under / n if n else 0.0,
        "over_triage_rate": over / n if n else 0.0,
        "self_care_sent_to_emergency": self_care_to_ed,
        "confusion": confusion,
        "latency_ms": {"turns": len(ms), "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95),
                       "mean": statistics.fmean(ms) if ms else 0.0},
        "errors": [{"id": r["id"], "expected": r["expected"], "predicted": r["predicted"],
                    "fired": [f["id"] for f in r["fired"]]} for r in scored if r["expected"] != r["predicted"]],
    }


def format_report(m: dict[str, Any]) -> str:
    lines = [
        f"cases: {m['cases']}  (" + ", ".join(f"{k}={v}" for k, v in m["per_level"].items()) + ")",
        f"accuracy:          {m['accuracy']:.1%}",
        f"emergency recall:  {m['emergency_recall']:.1%}",
        f"under-triage rate: {m['under_triage_rate']:.1%}",
        f"over-triage rate:  {m['over_triage_rate']:.1%}",
        f"self_care -> emergency: {m['self_care_sent_to_emergency']}",
        f"latency per turn:  p50 {m['latency_ms']['p50']:.2f} ms, p95 {m['latency_ms']['p95']:.2f} ms "
        f"({m['latency_ms']['turns']} turns)",
        "confusion (rows = expected, columns = predicted):",
        f"{'':>12}" + "".join(f"{p:>11}" for p in LEVELS),
    ]
    for e in LEVELS:
        lines.append(f"{e:>12}" + "".join(f"{m['confusion'][e][p]:>11}" for p in LEVELS))
    if m["errors"]:
        lines.append("mismatches:")
        lines += [f"  {x['id']}: expected {x['expected']}, got {x['predicted']} ({', '.join(x['fired']) or 'default'})"
                  for x in m["errors"]]
    return "\n".join(lines)


def format_sources(out: dict[str, Any], show_errors: bool = True) -> str:
    """One row per source (and ALL): cases, exact, emergency recall, under/over-triage, p95 ms per turn."""
    lines = [f"set: {out['set']}",
             f"{'source':<20}{'cases':>6}{'exact':>8}{'emerg. recall':>15}{'under':>8}{'over':>8}{'p95 ms':>9}"]
    for src, m in out["sources"].items():
        e = m["per_level"].get("emergency", 0)
        hit = round(m["emergency_recall"] * e)
        lines.append(f"{src:<20}{m['cases']:>6}{m['accuracy']:>8.2f}{f'{hit}/{e}':>15}{m['under_triage_rate']:>8.2f}"
                     f"{m['over_triage_rate']:>8.2f}{m['latency_ms']['p95']:>9.1f}")
    if out.get("skipped"):
        lines.append(f"skipped: {len(out['skipped'])} (" + "; ".join(out["skipped"][:3]) + ")")
    if show_errors:
        errs = [x for src, m in out["sources"].items() if src != "ALL" for x in m.get("errors", [])]
        if errs:
            lines.append("mismatches:")
            lines += [f"  {x['id']}: expected {x['expected']}, got {x['predicted']} ({', '.join(x['fired']) or 'default'})"
                      for x in errs]
    return "\n".join(lines)
