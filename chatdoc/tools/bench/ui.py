"""UI latency and memory in a real browser: ``chatdoc bench ui`` (:func:`run`).

Starts the real app (``chatdoc serve``) in a subprocess on a free port with an isolated data dir and its
own embedded Redis (or ``CHATDOC_REDIS_URL`` if set), drives headless Chromium through consent and
``--turns`` patient messages, and reports, measured in the page's clock from pressing Send:
  * time to the first streamed token (the assistant's bubble gets text),
  * time to the full reply (Send is enabled again),
as p50/p95/max, plus the app process's resident memory after start, after model load and at the end.
Patient turns use the real model wording by default (``model_wording=False`` for templates).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

MESSAGES = [
    "I've had a cough for about a week",
    "It's a dry cough, worse at night",
    "No, I haven't coughed up any blood",
    "I have a slight temperature sometimes",
    "I don't smoke",
    "No chest pain",
    "I take no regular medicines",
    "No allergies that I know of",
    "My sister had asthma",
    "It's about a 4 out of 10",
    "It started after a cold",
    "I work in an office",
]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run(
    turns: int = 10,
    model_wording: bool = True,
    max_new_tokens: int | None = None,
    out: Path | None = None,
    warmup: int = 1,
) -> dict:
    from playwright.sync_api import sync_playwright

    from chatdoc.tools.harness import AppProcess, consent, launch_browser, open_patient, send_timed

    data = Path(tempfile.mkdtemp(prefix="chatdoc-uibench-"))
    env = {
        "CHATDOC_DATA_DIR": str(data),
        "CHATDOC_REDIS_PORT": "0",
        "CHATDOC_DIALOGUE_USE_MODEL_WORDING": "true" if model_wording else "false",
    }
    if max_new_tokens:
        env["CHATDOC_DIALOGUE_WORDING_MAX_NEW_TOKENS"] = str(max_new_tokens)
        env["CHATDOC_GENERATION_MAX_NEW_TOKENS"] = str(max_new_tokens)
    app = AppProcess(env=env, log_path=data / "app.log")
    t0 = time.perf_counter()
    app.start()
    started_s = time.perf_counter() - t0
    rss_ready = app.rss_bytes()
    rows: list[dict] = []
    cold: list[dict] = []
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            open_patient(page, app.base)
            t1 = time.perf_counter()
            consent(page)
            consent_s = time.perf_counter() - t1
            for _ in range(warmup):  # the first turn also loads the redactor, NLP models, graph: reported apart
                cold.append(send_timed(page, "Hello, I would like some advice please"))
                print(f"warm-up turn: first token {cold[-1]['first_token_ms']:.0f} ms", file=sys.stderr)
            for i in range(turns):
                r = send_timed(page, MESSAGES[i % len(MESSAGES)])
                err = page.query_selector("#patient-error")
                r["error"] = err.inner_text() if err else None
                rows.append(r)
                print(f"turn {i + 1}: first token {r['first_token_ms']:.0f} ms, full reply {r['full_reply_ms']:.0f} ms",
                      file=sys.stderr)
            browser.close()
        rss_end = app.rss_bytes()
    finally:
        app.stop()
    first = [r["first_token_ms"] for r in rows if not r["error"]]
    full = [r["full_reply_ms"] for r in rows if not r["error"]]
    result = {
        "turns": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "model_wording": model_wording,
        "app_ready_s": round(started_s, 1),
        "consent_to_greeting_s": round(consent_s, 2),
        "cold_turn_first_token_ms": [round(c["first_token_ms"]) for c in cold],
        "first_token_ms": {"p50": round(_pct(first, 50)), "p95": round(_pct(first, 95)), "max": round(max(first or [0]))},
        "full_reply_ms": {"p50": round(_pct(full, 50)), "p95": round(_pct(full, 95)), "max": round(max(full or [0]))},
        "rss_mb": {"model_loaded": round(rss_ready / 2**20), "after_turns": round(rss_end / 2**20)},
        "mean_first_token_ms": round(statistics.mean(first)) if first else None,
    }
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": result, "turns": rows}, indent=2))
    return result
