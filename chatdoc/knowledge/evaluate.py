"""Dev measurement of retrieval: top-1 relevance accuracy, false retrieval, latency, and the threshold sweep.

    python -m chatdoc.knowledge.evaluate [--dev tests/knowledge/dev_questions.jsonl]

Each dev line is ``{"question", "kind": "knowledge"|"other"|"off_kb", "focus": [acceptable MedQuAD foci]}``. A knowledge
question is answered correctly when its top passage clears the threshold and its focus matches one of the
expected foci (the expected name's content stems are all in the retrieved focus: "Parkinson's disease" matches
"Parkinson disease"). An "other" (practical/off-topic) question is a false retrieval when anything clears the threshold; "off_kb"
questions are medical but not covered by MedQuAD (reported separately: retrieving for them means a loosely related
passage).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from chatdoc.knowledge.retrieve import THRESHOLD, get_index
from chatdoc.knowledge.words import content_stems

DEV = Path(__file__).resolve().parents[2] / "tests" / "knowledge" / "dev_questions.jsonl"


def focus_matches(retrieved: str, expected: list[str]) -> bool:
    got = set(content_stems(retrieved))
    return any(set(content_stems(e)) <= got for e in expected if content_stems(e))


def measure(dev: Path = DEV) -> dict:
    rows = [json.loads(x) for x in dev.read_text(encoding="utf-8").splitlines() if x.strip()]
    t0 = time.perf_counter()
    idx = get_index()
    build_s = time.perf_counter() - t0
    idx.search("warm up the encoder", 1)
    results, cold, warm = [], [], []
    for lap, times in (("cold", cold), ("warm", warm)):  # cold: question vectors not yet memoised
        for d in rows:
            t = time.perf_counter()
            top = idx.search(d["question"], k=1, threshold=-1.0)
            times.append(time.perf_counter() - t)
            if lap == "cold":
                results.append((d, top[0] if top else None))
    know = [(d, p) for d, p in results if d["kind"] == "knowledge"]
    other = [(d, p) for d, p in results if d["kind"] == "other"]
    off_kb = [(d, p) for d, p in results if d["kind"] == "off_kb"]

    def rates(th: float) -> tuple[float, float]:
        acc = sum(bool(p) and p.score >= th and focus_matches(p.focus, d["focus"]) for d, p in know) / len(know)
        false = sum(bool(p) and p.score >= th for _, p in other) / max(len(other), 1)
        off = sum(bool(p) and p.score >= th for _, p in off_kb) / max(len(off_kb), 1)
        return acc, false, off

    sweep = {round(th, 2): rates(th) for th in np.arange(0.2, 0.81, 0.05)}
    acc, false, off = rates(THRESHOLD)
    return {
        "n_knowledge": len(know), "n_other": len(other), "threshold": THRESHOLD, "top1_accuracy": acc,
        "false_retrieval": false, "off_kb_retrieval": off,
        "n_off_kb": len(off_kb), "off_kb_scores": [(d["question"], p.focus if p else None, round(p.score, 3) if p else None)
                                                   for d, p in off_kb], "index_build_s": build_s,
        "query_ms_cold": {"p50": 1000 * float(np.percentile(cold, 50)), "p95": 1000 * float(np.percentile(cold, 95))},
        "query_ms_warm": {"p50": 1000 * float(np.percentile(warm, 50)), "p95": 1000 * float(np.percentile(warm, 95))},
        "sweep": sweep,
        "misses": [(d["question"], p.focus if p else None, round(p.score, 3) if p else None) for d, p in know
                   if not (p and p.score >= THRESHOLD and focus_matches(p.focus, d["focus"]))],
        "false": [(d["question"], p.focus, round(p.score, 3)) for d, p in other if p and p.score >= THRESHOLD],
        "max_other_score": max((p.score for _, p in other if p), default=0.0),
        "min_correct_knowledge_score": min((p.score for d, p in know if p and focus_matches(p.focus, d["focus"])),
                                           default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", type=Path, default=DEV)
    r = measure(ap.parse_args(argv).dev)
    print(f"dev: {r['n_knowledge']} knowledge, {r['n_other']} other, {r['n_off_kb']} medical-but-not-in-MedQuAD "
          f"questions; threshold {r['threshold']}")
    print(f"top-1 relevance accuracy {r['top1_accuracy']:.1%}   false retrieval {r['false_retrieval']:.1%}   "
          f"off-KB retrieval {r['off_kb_retrieval']:.1%}")
    print(f"index build {r['index_build_s']:.1f} s; query ms cold p50 {r['query_ms_cold']['p50']:.0f} "
          f"p95 {r['query_ms_cold']['p95']:.0f}; warm p50 {r['query_ms_warm']['p50']:.0f} "
          f"p95 {r['query_ms_warm']['p95']:.0f}")
    print(f"highest 'other' score {r['max_other_score']:.3f}; lowest correct knowledge score "
          f"{r['min_correct_knowledge_score']:.3f}")
    print("threshold sweep (accuracy, false retrieval, off-KB retrieval):")
    for th, (a, f, o) in r["sweep"].items():
        print(f"  {th:.2f}  {a:.1%}  {f:.1%}  {o:.1%}")
    for q, f, s in r["off_kb_scores"]:
        print(f"  off-KB: {q!r} -> {f} ({s})")
    for q, f, s in r["misses"]:
        print(f"  miss: {q!r} -> {f} ({s})")
    for q, f, s in r["false"]:
        print(f"  false: {q!r} -> {f} ({s})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
