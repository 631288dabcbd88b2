"""``chatdoc eval findings``: the turn analysis against annotated findings (span-aligned, i2b2-assertion style).

Gold: ``utterances.jsonl`` (real MTS-Dialog / ACI-BENCH patient utterances) and the ``findings`` of the own
multi-turn scripts. A gold finding is *found* when a system finding overlaps its span in the same turn; its
assertion is then compared. Per assertion A: recall = gold-A found with assertion A / gold-A; precision = system
findings with assertion A that overlap a gold-A finding / system findings with assertion A that overlap any gold
finding or none (a spurious finding counts against its assertion). Modifier concepts ("sudden onset",
"severe") are not findings in the annotation and are left out. Attribute accuracy: for found gold
findings with a value (vital signs) or a duration/onset, whether the system found the same (value within 0.15;
text overlap for duration/onset).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from chatdoc.clinical.findings import ASSERTIONS


def _gold_units(case: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], str | None]:
    """(turns, gold findings with absolute spans, speaker) of an utterance or a script."""
    if "text" in case and "turns" not in case:
        turns = [case["text"]]
    else:
        turns = list(case.get("turns") or [])
    gold = []
    for g in case.get("findings") or []:
        t = int(g.get("turn", 0))
        if t >= len(turns) or not g.get("span"):
            continue
        s = turns[t].find(g["span"])
        if s < 0:
            continue
        gold.append({**g, "turn": t, "start": s, "end": s + len(g["span"])})
    return turns, gold, case.get("speaker")


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def evaluate(cases: list[dict[str, Any]], *, semantic: bool = True) -> dict[str, Any]:
    from chatdoc.clinical.analyse import analyse_record

    per = {a: {"tp": 0, "gold": 0, "sys": 0, "sys_tp": 0} for a in ASSERTIONS}
    attr = defaultdict(lambda: [0, 0])
    found = total = 0
    ms: list[float] = []
    by_origin: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # found, correct assertion, gold
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in cases:
        turns, gold, speaker = _gold_units(c)
        if not turns:
            continue
        t0 = time.perf_counter()
        rec = analyse_record(turns, speaker=speaker if speaker == "carer" else None, semantic=semantic)
        ms.append((time.perf_counter() - t0) * 1000 / max(1, len(turns)))
        sys = [f for r in rec for f in r.items if f.kind != "modifier" and f.superseded_by is None]
        origin = c.get("origin", "?")
        for g in gold:
            if g["assertion"] not in per:
                continue  # e.g. a statement the patient retracted ("other"): not scored
            per[g["assertion"]]["gold"] += 1
            total += 1
            by_origin[origin][2] += 1
            cands = [f for f in sys if f.turn == g["turn"] and _overlap(f.start, f.end, g["start"], g["end"])]
            if not cands:
                confusion[g["assertion"]]["(missed)"] += 1
                continue
            found += 1
            by_origin[origin][0] += 1
            best = max(cands, key=lambda f: (_overlap(f.start, f.end, g["start"], g["end"]), f.method != "semantic"))
            confusion[g["assertion"]][best.assertion] += 1
            if best.assertion == g["assertion"] and g["assertion"] in per:
                per[g["assertion"]]["tp"] += 1
                by_origin[origin][1] += 1
            ga = g.get("attributes") or {}
            if isinstance(ga.get("value"), (int, float)) and best.kind == "vital":
                attr["value"][1] += 1
                attr["value"][0] += int(best.attributes.value is not None and abs(best.attributes.value - ga["value"]) <= 0.15)
            for k in ("duration", "onset"):
                if ga.get(k):
                    attr[k][1] += 1
                    got = getattr(best.attributes, k) or ""
                    attr[k][0] += int(bool(got) and (_overlap_text(got, str(ga[k]))))
        # system precision: each distinct system span once (several concepts on one span are one finding)
        seen: set[tuple[int, int, int]] = set()
        for f in sys:
            key = (f.turn, f.start, f.end)
            if key in seen:
                continue
            seen.add(key)
            per[f.assertion]["sys"] += 1
            if any(g["turn"] == f.turn and g["assertion"] == f.assertion and _overlap(f.start, f.end, g["start"], g["end"])
                   for g in gold):
                per[f.assertion]["sys_tp"] += 1
    table = {}
    for a, v in per.items():
        table[a] = {"gold": v["gold"], "system": v["sys"],
                    "recall": round(v["tp"] / v["gold"], 3) if v["gold"] else None,
                    "precision": round(v["sys_tp"] / v["sys"], 3) if v["sys"] else None}
    ms_sorted = sorted(ms)
    return {
        "cases": len(cases), "gold_findings": total, "found": found,
        "span_recall": round(found / total, 3) if total else None,
        "assertions": table,
        "attributes": {k: {"n": v[1], "accuracy": round(v[0] / v[1], 3) if v[1] else None} for k, v in attr.items()},
        "per_origin": {o: {"gold": v[2], "span_recall": round(v[0] / v[2], 3) if v[2] else None,
                           "assertion_correct": round(v[1] / v[2], 3) if v[2] else None} for o, v in by_origin.items()},
        "confusion": {k: dict(v) for k, v in confusion.items()},
        "ms_per_turn": {"p50": ms_sorted[len(ms) // 2] if ms else 0.0,
                        "p95": ms_sorted[min(len(ms) - 1, int(len(ms) * 0.95))] if ms else 0.0},
    }


def _overlap_text(a: str, b: str) -> bool:
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return bool(wa & wb)


def format_report(m: dict[str, Any]) -> str:
    lines = [f"cases {m['cases']}, gold findings {m['gold_findings']}, found (span) {m['found']} "
             f"= {m['span_recall']}", f"{'assertion':<14}{'gold':>6}{'system':>8}{'recall':>8}{'precision':>11}"]
    for a, v in m["assertions"].items():
        lines.append(f"{a:<14}{v['gold']:>6}{v['system']:>8}{_f(v['recall']):>8}{_f(v['precision']):>11}")
    lines.append("per origin: " + "; ".join(f"{o}: span recall {_f(v['span_recall'])}, assertion correct "
                                            f"{_f(v['assertion_correct'])} (n={v['gold']})" for o, v in m["per_origin"].items()))
    lines.append("attributes: " + "; ".join(f"{k} {_f(v['accuracy'])} (n={v['n']})" for k, v in m["attributes"].items()))
    lines.append(f"analysis per turn: p50 {m['ms_per_turn']['p50']:.1f} ms, p95 {m['ms_per_turn']['p95']:.1f} ms")
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"
