"""``chatdoc eval consult``: simulated-patient consultations through the real graph (via the service).

Per case: ``start_consultation`` -> ``record_consent`` -> the patient's opening -> ``send_message`` with
the simulated patient's answer to each assistant reply, until the reply says ``done`` or ``max_turns``
patient turns were sent -> ``end_consultation``. The staff summary text is then scored:

* history coverage: share of the case's facts present in the final summary text (``facts.coverage``);
  per fact also whether the patient actually *disclosed* it, so a miss can be blamed on the questions
  (never asked) or on the summary (said but not written down);
* questions asked (question sentences of the assistant's messages) and repeated questions;
* turns, final triage level, and hallucinations: summary claims not supported by anything the
  patient said (``facts.unsupported_claims``).
"""

from __future__ import annotations

import importlib
import re
import statistics
import time
from collections.abc import Callable

from chatdoc.tools.eval.cases import Case
from chatdoc.tools.eval.facts import coverage, questions_in, repeated_questions, unsupported_claims
from chatdoc.tools.eval.simpatient import SimulatedPatient

DEFAULT_MAX_TURNS = 12


def _service():
    return importlib.import_module("chatdoc.service").build_service()


def _get(obj, name, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def run_case(case: Case, max_turns: int = DEFAULT_MAX_TURNS, service=None, keep: bool = False,
             persona: str | None = None) -> dict:
    svc = service or _service()
    patient = SimulatedPatient(case)
    t_start = time.perf_counter()
    start = svc.start_consultation(persona) if persona else svc.start_consultation()
    sid = start.session_id
    transcript: list[dict] = []
    turn_s: list[float] = []
    try:
        r = svc.record_consent(sid)
        transcript.append({"role": "assistant", "text": r.reply})
        last = r
        msg = patient.opening()
        turns = 0
        while turns < max_turns and not _get(last, "done", False):
            transcript.append({"role": "patient", "text": msg})
            t0 = time.perf_counter()
            last = svc.send_message(sid, msg)
            turn_s.append(time.perf_counter() - t0)
            turns += 1
            transcript.append({"role": "assistant", "text": last.reply})
            if _get(last, "done", False):
                break
            msg = patient.answer(last.reply)
        summary = svc.end_consultation(sid)
    finally:
        if not keep:
            try:
                svc.delete_consultation(sid)
            except Exception:  # noqa: BLE001 - best effort clean-up of eval data
                pass
    summary_text = summary.text or ""
    questions = [q for t in transcript if t["role"] == "assistant" for q in questions_in(t["text"])]
    reps = repeated_questions(questions)
    cov = coverage(case.facts, summary_text)
    said_lower = " ".join(patient.said).lower()
    for i, d in enumerate(cov["facts"]):
        d["disclosed"] = i in patient.disclosed or case.facts[i].text.lower() in said_lower
    denied_qs = [transcript[i]["text"] for i in range(len(transcript) - 1)
                 if transcript[i]["role"] == "assistant" and transcript[i + 1]["role"] == "patient"
                 and re.match(r"^(No\b|Not that I know of)", transcript[i + 1]["text"])]
    halluc = unsupported_claims(summary_text, patient.said + [case.demographics], denied_questions=denied_qs)
    structured = summary.structured if isinstance(summary.structured, dict) else {}
    return {
        "case": case.id,
        "source": case.source,
        "diagnosis": case.diagnosis,
        "facts": len(case.facts),
        "coverage": cov["coverage"],
        "covered": cov["covered"],
        "per_kind": cov["per_kind"],
        "disclosed": sum(1 for d in cov["facts"] if d["disclosed"]),
        "fact_detail": cov["facts"],
        "turns": len(turn_s),
        "questions_asked": len(questions),
        "service_questions_asked": _get(last, "questions_asked"),
        "repeated_questions": len(reps),
        "repeated_pairs": [list(p) for p in reps],
        "triage_level": structured.get("triage_level") or _get(last, "triage_level"),
        "phase": _get(last, "phase"),
        "done": bool(_get(last, "done", False)),
        "hallucinations": len(halluc),
        "hallucinated_claims": halluc,
        "turn_s": [round(x, 3) for x in turn_s],
        "wall_s": round(time.perf_counter() - t_start, 2),
        "transcript": transcript,
        "summary_text": summary_text,
    }


def aggregate(results: list[dict]) -> dict:
    ok = [r for r in results if "error" not in r]
    covs = [r["coverage"] for r in ok if r["coverage"] is not None]
    per_kind: dict[str, dict] = {}
    for r in ok:
        for k, v in r["per_kind"].items():
            pk = per_kind.setdefault(k, {"covered": 0, "total": 0, "disclosed": 0})
            pk["covered"] += v["covered"]
            pk["total"] += v["total"]
        for d in r["fact_detail"]:
            per_kind[d["kind"]]["disclosed"] += int(d["disclosed"])
    for v in per_kind.values():
        v["coverage"] = round(v["covered"] / v["total"], 3) if v["total"] else None
        v["disclosed_share"] = round(v["disclosed"] / v["total"], 3) if v["total"] else None
    # misses split by cause: never disclosed (not asked / not answerable) vs disclosed but not in summary
    missed_not_disclosed = sum(1 for r in ok for d in r["fact_detail"] if not d["covered"] and not d["disclosed"])
    missed_disclosed = sum(1 for r in ok for d in r["fact_detail"] if not d["covered"] and d["disclosed"])
    polarity_errors = sum(1 for r in ok for d in r["fact_detail"] if d.get("polarity_error"))
    turn_s = sorted(t for r in ok for t in r["turn_s"])
    triage: dict[str, int] = {}
    for r in ok:
        triage[str(r["triage_level"])] = triage.get(str(r["triage_level"]), 0) + 1
    return {
        "cases": len(results),
        "errors": len(results) - len(ok),
        "mean_coverage": round(statistics.mean(covs), 3) if covs else None,
        "median_coverage": round(statistics.median(covs), 3) if covs else None,
        "per_kind": per_kind,
        "missed_never_disclosed": missed_not_disclosed,
        "missed_disclosed_not_summarized": missed_disclosed,
        "polarity_errors": polarity_errors,
        "mean_turns": round(statistics.mean([r["turns"] for r in ok]), 2) if ok else None,
        "mean_questions_asked": round(statistics.mean([r["questions_asked"] for r in ok]), 2) if ok else None,
        "repeated_questions": sum(r["repeated_questions"] for r in ok),
        "hallucinations": sum(r["hallucinations"] for r in ok),
        "cases_with_hallucinations": sum(1 for r in ok if r["hallucinations"]),
        "triage_levels": triage,
        "turn_p50_s": round(statistics.median(turn_s), 3) if turn_s else None,
        "turn_p95_s": round(turn_s[min(len(turn_s) - 1, int(0.95 * len(turn_s)))], 3) if turn_s else None,
    }


def run_cases(cases: list[Case], max_turns: int = DEFAULT_MAX_TURNS, limit: int | None = None, service=None,
              progress: Callable[[int, int, dict], None] | None = None, keep: bool = False) -> dict:
    chosen = cases[:limit] if limit else cases
    results = []
    for i, c in enumerate(chosen):
        try:
            res = run_case(c, max_turns=max_turns, service=service, keep=keep)
        except Exception as e:  # one failing case must not lose the others
            svc_err = type(e).__name__
            res = {"case": c.id, "error": f"{svc_err}: {e}"}
        results.append(res)
        if progress:
            progress(i + 1, len(chosen), res)
    return {"summary": aggregate(results), "max_turns": max_turns, "cases": results}
