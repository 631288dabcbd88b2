"""Per-turn latency and storage of scripted consultations through the real service path, and many patients at once.

    chatdoc bench dialogue [--model] [--concurrency 1,4,8,16,50] [--turns 5] [--json]
    (:func:`bench`, :func:`format_text`; :func:`concurrent_patients`, :func:`format_concurrency`)

Measures, per patient turn: wall time of ``service.send_message`` (graph + redaction + safety + Redis
[+ model wording]), model generation time inside it, and the growth in Redis bytes of the session's
keys (``MEMORY USAGE``; checkpoint + index). Uses the configured Redis (CHATDOC_REDIS_URL or the
embedded server). The consultations are erased afterwards.

Concurrency (:func:`concurrent_patients`): N simulated patients in N threads of ONE process and ONE service (as in
the web app, where Gradio runs each turn in a worker thread), all starting together, each consenting and then
sending ``turns`` scripted messages back to back (no think time: the worst case). Per level: throughput (turns/s),
per-turn p50/p95/max, errors, lost turns (a turn that returned a reply but whose message is not in the stored
transcript afterwards, or that raised), and the process's peak RSS.
"""

from __future__ import annotations

import resource
import statistics
import threading
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


# ---------------------------------------------------------------------------------------------- many patients at once
CONCURRENCY_LEVELS = (1, 4, 8, 16, 50)
CONCURRENT_SCRIPTS = [
    SCRIPTS["headache"],
    ["I've had a sore throat and a mild fever since Tuesday", "It started three days ago and it's getting worse",
     "My temperature was 38.2 this morning", "It hurts to swallow, especially solid food", "No cough", "no"],
]


def _level(service, users: int, turns: int) -> dict:
    lock = threading.Lock()
    walls: list[float] = []
    errors: list[str] = []
    sent: dict[str, int] = {}  # session -> turns that returned a reply
    start = threading.Barrier(users + 1)

    def patient(i: int) -> None:
        script = CONCURRENT_SCRIPTS[i % len(CONCURRENT_SCRIPTS)]
        try:
            sid = service.start_consultation().session_id
            service.record_consent(sid)
        except Exception as e:  # noqa: BLE001 - counted
            with lock:
                errors.append(f"start: {type(e).__name__}: {e}")
            start.wait()
            return
        with lock:
            sent[sid] = 0
        start.wait()
        for msg in script[:turns]:
            t0 = time.perf_counter()
            try:
                rep = service.send_message(sid, msg)
            except Exception as e:  # noqa: BLE001 - counted
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                continue
            dt = time.perf_counter() - t0
            with lock:
                walls.append(dt)
                sent[sid] += 1
            if rep.done:
                break

    threads = [threading.Thread(target=patient, args=(i,), name=f"bench-patient-{i}") for i in range(users)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lost = len(errors)
    for sid, n in sent.items():  # every answered turn must be in the stored record
        try:
            stored = sum(1 for m in service.get_state(sid).transcript if m["role"] == "patient")
            lost += max(0, n - stored)
            service.delete_consultation(sid)
        except Exception as e:  # noqa: BLE001
            errors.append(f"check: {type(e).__name__}: {e}")
            lost += n
    return {
        "patients": users, "turns": len(walls), "wall_s": round(wall, 2),
        "turns_per_s": round(len(walls) / wall, 2) if wall else None,
        "turn_p50_s": round(_pct(walls, 0.5), 3), "turn_p95_s": round(_pct(walls, 0.95), 3),
        "turn_max_s": round(max(walls, default=0.0), 3),
        "errors": len(errors), "error_examples": errors[:3], "lost_turns": lost,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def concurrent_patients(levels=CONCURRENCY_LEVELS, turns: int = 5, progress=None) -> dict:
    """``levels`` of simultaneous simulated patients x ``turns`` template turns each, one process, one service."""
    import os
    import platform
    from datetime import datetime, timezone

    from chatdoc.config import load_settings
    from chatdoc.privacy import get_redactor
    from chatdoc.service import build_service

    get_redactor()
    service = build_service(load_settings(dialogue={"use_model_wording": False}))
    _level(service, 1, 2)  # warm-up: redaction, extraction and triage models load before timing
    out = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
           "wording": "template", "turns_per_patient": turns, "levels": []}
    for n in levels:
        if progress:
            progress(f"{n} concurrent patients x {turns} turns")
        out["levels"].append(_level(service, n, turns))
    return out


def format_concurrency(res: dict) -> str:
    lines = [f"concurrent simulated patients, one process, {res['turns_per_patient']} {res['wording']} turns each "
             f"({res['date']}, {res['machine']['cpus']} CPUs)",
             f"{'patients':>8} {'turns':>6} {'turns/s':>8} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'errors':>6} "
             f"{'lost':>5} {'peak RSS MB':>11}"]
    for x in res["levels"]:
        lines.append(f"{x['patients']:>8} {x['turns']:>6} {x['turns_per_s']:>8} {x['turn_p50_s']:>7} "
                     f"{x['turn_p95_s']:>7} {x['turn_max_s']:>7} {x['errors']:>6} {x['lost_turns']:>5} "
                     f"{x['peak_rss_mb']:>11}")
    return "\n".join(lines)
