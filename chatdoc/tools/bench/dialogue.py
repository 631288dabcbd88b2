"""Per-turn latency and storage of scripted consultations through the real service path.

    chatdoc bench dialogue [--model] [--json]   (:func:`bench`, :func:`format_text`)

Measures, per patient turn: wall time of ``service.send_message`` (graph + redaction + safety + Redis
[+ model wording]), model generation time inside it, and the growth in Redis bytes of the session's
keys (``MEMORY USAGE``; checkpoint + index). Uses the configured Redis (CHATDOC_REDIS_URL or the
embedded server). The consultations are erased afterwards.
"""

from __future__ import annotations

import statistics
import time

SCRIPTS = {
    "headache": [
        "I've had a throbbing headache for 3 days, on the left side of my head, about 7/10. No fever.",
        "No, my neck isn't stiff", "no", "no", "no",
        "It's worse in the mornings and paracetamol helps a bit",
        "I'm allergic to penicillin and I have asthma", "I'm worried it could be something serious", "that's all",
    ],
    "chest_pain": [
        "I've had chest pain since this morning, it's sharp and about 5/10",
        "no it doesn't spread", "no", "no", "no", "no", "It's worse when I breathe in",
        "I take ramipril 5mg for high blood pressure", "no allergies", "I smoke 10 a day", "that's all",
    ],
}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return 0.0
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def _session_bytes(r, sid: str) -> int:
    total = 0
    for key in r.scan_iter(match=f"*{sid}*", count=500):
        total += r.memory_usage(key) or 0
    return total


def run(use_model: bool = False, scripts: dict[str, list[str]] | None = None) -> dict:
    from chatdoc.config import load_settings
    from chatdoc.dialogue.respond import gen_stats
    from chatdoc.memory import get_redis
    from chatdoc.service import build_service

    r = get_redis()
    # this run's wording on its own service object: the process-wide settings are never changed
    service = build_service(load_settings(dialogue={"use_model_wording": use_model}))
    turns: list[dict] = []
    cases = {}
    for name, msgs in (scripts or SCRIPTS).items():
        sid = service.start_consultation().session_id
        service.record_consent(sid)
        prev = _session_bytes(r, sid)
        for m in msgs:
            t0 = time.perf_counter()
            rep = service.send_message(sid, m)
            wall = time.perf_counter() - t0
            g = gen_stats()
            now = _session_bytes(r, sid)
            turns.append({"case": name, "wall_s": wall, "gen_s": g["gen_s"], "no_gen_s": wall - g["gen_s"],
                          "bytes": now - prev, "gen_tokens": g["gen_tokens"]})
            prev = now
            if rep.done:
                break
        view = service.get_state(sid)
        from chatdoc.dialogue.extract import is_filled
        from chatdoc.dialogue.questions import plan

        items = plan(view.history["complaint_set"])
        filled = sum(1 for it in items if is_filled(it.slot, view.history, view.profile))
        cases[name] = {"questions_asked": len(view.question_log), "slots_filled": filled, "plan_slots": len(items),
                       "model_worded": sum(1 for q in view.question_log if q["source"] == "model"),
                       "session_bytes": prev}
        service.end_consultation(sid)
        service.delete_consultation(sid)
    walls = [t["wall_s"] for t in turns]
    nogen = [t["no_gen_s"] for t in turns]
    return {
        "use_model_wording": use_model, "turns": len(turns),
        "turn_ms_no_gen": {"median": statistics.median(nogen) * 1000, "p95": _pct(nogen, 0.95) * 1000},
        "turn_ms_total": {"median": statistics.median(walls) * 1000, "p95": _pct(walls, 0.95) * 1000},
        "checkpoint_bytes_per_turn": {"median": statistics.median([t["bytes"] for t in turns]),
                                      "max": max(t["bytes"] for t in turns)},
        "cases": cases,
    }


def bench(model: bool = False) -> list[dict]:
    """Template wording, then (``model``) model wording too; spaCy/Presidio/rules load before timing."""
    from chatdoc.privacy import get_redactor

    get_redactor()
    run(False, {"warmup": SCRIPTS["headache"][:2]})
    results = [run(False)]
    if model:
        from chatdoc.llm import get_backend

        get_backend()
        results.append(run(True))
    return results


def format_text(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"model wording: {res['use_model_wording']}  turns: {res['turns']}")
        lines.append(f"  per turn excl. generation: median {res['turn_ms_no_gen']['median']:.0f} ms, p95 {res['turn_ms_no_gen']['p95']:.0f} ms")
        lines.append(f"  per turn incl. generation: median {res['turn_ms_total']['median']:.0f} ms, p95 {res['turn_ms_total']['p95']:.0f} ms")
        lines.append(f"  Redis bytes per turn: median {res['checkpoint_bytes_per_turn']['median']:.0f}, "
                     f"max {res['checkpoint_bytes_per_turn']['max']:.0f}")
        lines.extend(f"  {k}: {c}" for k, c in res["cases"].items())
    return "\n".join(lines)
