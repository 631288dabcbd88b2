"""Screenshots of two whole consultations in a real browser, for the docs.

    python -m chatdoc.tools.screenshots --out docs/screenshots [--model | --no-model]

Starts the real app (``chatdoc serve``, :class:`~chatdoc.tools.harness.AppProcess`) on a free port with a
temporary data dir, its own throwaway redis-server (:class:`~chatdoc.memory.server.EmbeddedRedis` in that
dir, the way ``tests/fixtures_redis.py`` does) and one staff user; drives headless Chromium through consent
and two consultations in lay language:

* routine: an adult with a sore throat who asks "Should I be worried?", corrects the duration, asks what
  tonsillitis is, answers the assistant's questions briefly, says "that's all" and ends the consultation;
* urgent: a 60-year-old with chest tightness spreading to the left arm who asks about paracetamol;

then logs in as staff and opens the routine consultation. Writes ``consultation-routine.png``,
``consultation-urgent.png`` and ``staff-summary-routine.png`` (full page, the chat panel expanded so the
whole conversation is in the picture). ``--model``/``--no-model`` set ``CHATDOC_DIALOGUE_USE_MODEL_WORDING``
(default: the configured value). Nothing is written to the user's data dir; the app and the redis-server are
always stopped. Exit status 1 with one line on stderr on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

STAFF_USER = ("docs.staff", "docs-staff-pass-123")

# Routine consultation: scripted turns; ``None`` = answer the assistant's last question (see :func:`_answer`).
ROUTINE_SCRIPT: list[str | None] = [
    "Hi, I'm 34 and I've had a sore throat for three days.",
    None,
    "Should I be worried?",
    None,
    "Sorry, I meant four days, not three.",
    None,
    "What is tonsillitis?",
    None,
    None,
    None,
    None,
    "That's all, thank you.",
]
URGENT_SCRIPT: list[str | None] = [
    "Hello, I'm 60 and for the last half hour my chest has felt tight, and it's spreading down my left arm.",
    "Can I just take a paracetamol and wait?",
    None,
    None,
]

# Brief lay answers, picked by words in the assistant's last question (first match wins).
ROUTINE_ANSWERS: list[tuple[str, str]] = [
    (r"swallow", "I can swallow, it just hurts, mostly in the morning."),
    (r"breath", "No, my breathing is fine."),
    (r"temperature|fever|hot|shiver", "I felt a bit hot last night but I didn't check my temperature."),
    (r"rash|skin", "No rash."),
    (r"cough", "Just a little tickly cough, nothing coming up."),
    (r"medic.*allerg", "Just throat sweets and one ibuprofen yesterday. No allergies that I know of."),
    (r"allerg", "No allergies that I know of."),
    (r"condition|operation|illness|family|history", "No, I'm normally healthy, and nothing runs in the family."),
    (r"smok|alcohol|drugs", "I don't smoke, I have the odd glass of wine."),
    (r"medic|tablet|pill|taking|tried", "Only some throat sweets and ibuprofen once yesterday."),
    (r"scale|out of 10|how bad|severe", "About 5 out of 10."),
    (r"gland|neck|lump|swell", "The sides of my neck feel a bit swollen."),
    (r"\bears?\b", "My ears feel a bit blocked, but they don't hurt."),
    (r"work|live with|travel|unwell", "I work in an office and live with my partner, who had a cold last week."),
    (r"eat|drink|fluid", "I can drink fine, eating is a bit sore."),
    (r"pregnan", "No."),
    (r"start|began|when|how long", "It started four days ago."),
]
URGENT_ANSWERS: list[tuple[str, str]] = [
    (r"start|when|sudden|gradual", "It came on suddenly half an hour ago, while I was carrying the shopping in."),
    (r"other symptom|anything else|sweat|sick|nause", "I feel sweaty and a bit sick."),
    (r"breath", "I'm a little short of breath."),
    (r"scale|out of 10|how bad|severe", "About 7 out of 10."),
]
ROUTINE_FALLBACK = "No, nothing like that."
URGENT_FALLBACK = "I feel sweaty and a bit sick."

# Let the chat panel grow to its content so a full-page screenshot shows the whole conversation.
EXPAND_CSS = """
#chat, #chat > div, #chat .wrapper, #chat .bubble-wrap, #chat [role=log], #chat .message-wrap {
  height: auto !important; max-height: none !important; overflow: visible !important; flex-grow: 0 !important;
}
"""


def _texts(page, who: str) -> list[str]:
    return page.eval_on_selector_all(f"#chat [data-testid={who}]", "els => els.map(e => e.innerText.trim())")


def _answer(last_bot: str, answers: list[tuple[str, str]], fallback: str) -> str:
    """A brief answer to the assistant's last question (the last sentence with a question mark, else the text)."""
    questions = re.findall(r"[^.?!\n]*\?", last_bot)
    q = (questions[-1] if questions else last_bot).lower()
    for pattern, answer in answers:
        if re.search(pattern, q):
            return answer
    return fallback


def _send(page, text: str) -> None:
    from chatdoc.tools.harness import send_timed

    send_timed(page, text)
    err = page.query_selector("#patient-error")
    if err is not None:
        raise RuntimeError(f"the app answered {text!r} with an error: {err.inner_text().strip()}")
    _settle(page)


def _settle(page, quiet_ms: int = 600, timeout_s: float = 60.0) -> None:
    """Wait until the last reply bubble stops changing for ``quiet_ms``."""
    last, since, t0 = None, time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        bots = _texts(page, "bot")
        cur = bots[-1] if bots else ""
        if cur != last:
            last, since = cur, time.monotonic()
        elif (time.monotonic() - since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(150)


def _consultation(page, base: str, script: list[str | None], answers: list[tuple[str, str]],
                  fallback: str) -> tuple[str, list[str]]:
    """Consent, then the script; returns (session id, the patient's messages as sent)."""
    from chatdoc.tools.harness import consent, open_patient

    open_patient(page, base)
    consent(page)
    if not _texts(page, "bot"):
        raise RuntimeError("no greeting after consent")
    sent: list[str] = []
    used: set[str] = set()
    for item in script:
        if item is None:
            text = _answer(_texts(page, "bot")[-1], answers, fallback)
            if text in used:  # do not repeat ourselves: a short, plausible "no" instead
                text = fallback if fallback not in used else "No."
        else:
            text = item
        used.add(text)
        _send(page, text)
        sent.append(text)
        print(f"  patient: {text}\n  assistant: {_texts(page, 'bot')[-1][:160]!r}", file=sys.stderr)
    sid = page.inner_text("#resume-code").strip()
    return sid, sent


def _shoot(page, path: Path) -> None:
    page.add_style_tag(content=EXPAND_CSS)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)


def run(out: Path, model_wording: bool | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    from chatdoc.memory.server import EmbeddedRedis
    from chatdoc.tools.harness import AppProcess, launch_browser, login
    from chatdoc.ui.auth import hash_password

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="chatdoc-shots-"))
    redis_server = app = None
    result: dict = {}
    try:
        redis_server = EmbeddedRedis(tmp / "redis", port=0).start()
        env = {
            "CHATDOC_DATA_DIR": str(tmp / "data"),
            "CHATDOC_REDIS_URL": redis_server.url,
            "CHATDOC_UI_USERS": json.dumps([{"username": STAFF_USER[0], "role": "staff",
                                             "password_hash": hash_password(STAFF_USER[1], rounds=4)}]),
        }
        if model_wording is not None:
            env["CHATDOC_DIALOGUE_USE_MODEL_WORDING"] = "true" if model_wording else "false"
        app = AppProcess(env=env, log_path=tmp / "app.log")
        print(f"starting the app on {app.base} (data dir {tmp}) ...", file=sys.stderr)
        app.start()
        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                ctx = browser.new_context(viewport={"width": 1100, "height": 900})
                page = ctx.new_page()
                page.set_default_timeout(60_000)

                print("routine consultation:", file=sys.stderr)
                sid, sent = _consultation(page, app.base, ROUTINE_SCRIPT, ROUTINE_ANSWERS, ROUTINE_FALLBACK)
                if page.is_enabled("#end-btn"):
                    page.click("#end-btn")
                    page.wait_for_selector("#lay-summary", timeout=180_000)
                routine = out / "consultation-routine.png"
                _shoot(page, routine)
                result["routine"] = {"path": str(routine), "patient_turns": len(sent),
                                     "assistant_turns": len(_texts(page, "bot")), "session": sid[:8]}
                ctx.close()

                print("urgent consultation:", file=sys.stderr)
                ctx = browser.new_context(viewport={"width": 1100, "height": 900})
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                _, sent_u = _consultation(page, app.base, URGENT_SCRIPT, URGENT_ANSWERS, URGENT_FALLBACK)
                page.wait_for_selector("#triage-banner", state="visible", timeout=60_000)
                urgent = out / "consultation-urgent.png"
                _shoot(page, urgent)
                result["urgent"] = {"path": str(urgent), "patient_turns": len(sent_u),
                                    "assistant_turns": len(_texts(page, "bot")),
                                    "banner": page.inner_text("#triage-banner").strip()[:120]}
                ctx.close()

                print("staff summary:", file=sys.stderr)
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                login(page, app.base, "staff", *STAFF_USER, expect="#consult-table, #consult-empty")
                page.click("#consult-pick input")
                page.click(f"[role=option]:has-text('{sid[:8]}')")
                page.wait_for_selector("#transcript", timeout=180_000)
                page.wait_for_selector("#structured-summary", timeout=180_000)
                page.wait_for_timeout(500)
                staff = out / "staff-summary-routine.png"
                page.screenshot(path=str(staff), full_page=True)
                result["staff"] = {"path": str(staff)}
                ctx.close()
            finally:
                browser.close()
    except Exception:
        if app is not None and app.log_path is not None and app.log_path.exists():
            tail = app.log_path.read_text(errors="replace").splitlines()[-15:]
            print("app log (last lines):\n  " + "\n  ".join(tail), file=sys.stderr)
        raise
    finally:
        if app is not None:
            app.stop()
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    ap.add_argument("--model", action=argparse.BooleanOptionalAction, default=None,
                    help="word the assistant's questions with the model (default: the configured value)")
    args = ap.parse_args(argv)
    try:
        res = run(args.out, args.model)
    except Exception as e:  # noqa: BLE001 - one clear line, no traceback
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"screenshots failed: {type(e).__name__}: {msg[:400]}", file=sys.stderr)
        return 1
    r, u = res["routine"], res["urgent"]
    print(f"{r['path']}  routine: {r['patient_turns']} patient turns, {r['assistant_turns']} assistant replies")
    print(f"{u['path']}  urgent: {u['patient_turns']} patient turns, {u['assistant_turns']} assistant replies")
    print(f"{res['staff']['path']}  staff summary of the routine consultation ({r['session']}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
