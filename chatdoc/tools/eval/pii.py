"""Scoring of the redactor on a JSON-lines dev set (``chatdoc eval pii``).

Input lines: ``{"text": str, "spans": [{"start","end","type"}], "keep": [{"start","end"}]}``.

Matching rule (overlap-based):
* per type: a gold span of type T is found when some predicted span **of type T** overlaps it by at
  least one character; a predicted span of type T is correct when it overlaps a gold span of type T.
  precision = correct predictions / predictions, recall = found gold / gold, F2 weights recall 2x.
* identifier recall (overall, the privacy number): a gold span is protected when predicted spans of
  **any** type cover at least half of its characters (a wrong label still hides the value, a sliver
  does not).
* clinical retention: share of ``keep`` spans that no predicted span touches.
* latency: wall time of ``Redactor.redact`` per message (fresh session), after one warm-up call.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path

from chatdoc.jsonl import read_jsonl


class EvalDataError(ValueError):
    """The dev set is malformed; the message names the file and line."""


def load_jsonl(path: Path) -> list[dict]:
    rows = []
    for where, row in read_jsonl(path, EvalDataError, "dev set not found"):
        _validate(row, where)
        rows.append(row)
    if not rows:
        raise EvalDataError(f"{path}: no examples")
    return rows


def _validate(row, where: str) -> None:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise EvalDataError(f"{where}: each line needs a 'text' string")
    n = len(row["text"])
    for key, need_type in (("spans", True), ("keep", False)):
        items = row.get(key, [])
        if not isinstance(items, list):
            raise EvalDataError(f"{where}: '{key}' must be a list")
        for i, sp in enumerate(items):
            if not isinstance(sp, dict) or not isinstance(sp.get("start"), int) or not isinstance(sp.get("end"), int):
                raise EvalDataError(f"{where}: {key}[{i}] needs integer 'start' and 'end'")
            if not 0 <= sp["start"] < sp["end"] <= n:
                raise EvalDataError(f"{where}: {key}[{i}] [{sp['start']},{sp['end']}) is outside the text (length {n})")
            if need_type and not isinstance(sp.get("type"), str):
                raise EvalDataError(f"{where}: {key}[{i}] needs a 'type' string")


def _ov(a, b) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _f(p: float, r: float, beta: float = 2.0) -> float:
    return 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)


def score(redactor, rows: list[dict], keep_examples: int = 0) -> dict:
    """Metrics dict (see module docstring). ``keep_examples`` > 0 adds up to that many misses/false keeps."""
    from chatdoc.privacy.placeholders import PlaceholderState

    redactor.redact("warm up the pipeline, call me on 07700 900123")
    gold_n, found, pred_n, pred_ok = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
    protected = total_gold = keep_total = keep_ok = 0
    lat, misses, clobbered = [], [], []
    for row in rows:
        text = row["text"]
        t0 = time.perf_counter()
        red = redactor.redact(text, PlaceholderState.new())
        lat.append((time.perf_counter() - t0) * 1000)
        preds = [(e.start, e.end, e.type) for e in red.entities]
        for g in row.get("spans", []):
            gs = (g["start"], g["end"])
            gold_n[g["type"]] += 1
            total_gold += 1
            if any(p[2] == g["type"] and _ov(gs, p) for p in preds):
                found[g["type"]] += 1
            covered = sum(_ov(gs, p) for p in preds)
            if covered * 2 >= gs[1] - gs[0]:
                protected += 1
            elif len(misses) < keep_examples:
                misses.append({"type": g["type"], "value": text[gs[0]:gs[1]], "text": text, "redacted": red.text})
        for p in preds:
            pred_n[p[2]] += 1
            if any(g["type"] == p[2] and _ov((g["start"], g["end"]), p) for g in row.get("spans", [])):
                pred_ok[p[2]] += 1
        for k in row.get("keep", []):
            keep_total += 1
            if not any(_ov((k["start"], k["end"]), p) for p in preds):
                keep_ok += 1
            elif len(clobbered) < keep_examples:
                clobbered.append({"keep": text[k["start"]:k["end"]], "text": text, "redacted": red.text})
    per_type = {}
    for t in sorted(set(gold_n) | set(pred_n)):
        p = pred_ok[t] / pred_n[t] if pred_n[t] else 0.0
        r = found[t] / gold_n[t] if gold_n[t] else 0.0
        per_type[t] = {"gold": gold_n[t], "predicted": pred_n[t], "precision": round(p, 4), "recall": round(r, 4),
                       "f2": round(_f(p, r), 4)}
    lat_sorted = sorted(lat)
    out = {
        "examples": len(rows),
        "identifiers": total_gold,
        "identifier_recall": round(protected / total_gold, 4) if total_gold else None,
        "clinical_retention": round(keep_ok / keep_total, 4) if keep_total else None,
        "keep_spans": keep_total,
        "latency_ms": {
            "p50": round(statistics.median(lat_sorted), 2),
            "p95": round(lat_sorted[min(len(lat_sorted) - 1, int(0.95 * len(lat_sorted)))], 2),
            "mean": round(statistics.fmean(lat_sorted), 2),
        },
        "per_type": per_type,
        "match_rule": "per-type: same type and >=1 char overlap; identifier recall: any type covering >=50% of the span",
    }
    if keep_examples:
        out["missed"] = misses
        out["clobbered_keep"] = clobbered
    return out
