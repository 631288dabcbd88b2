"""Identifiers never reach Redis; one-turn-per-process CLI; a killed process resumes; transcripts; real model."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.redis_scan import dump_all

REPO = Path(__file__).resolve().parents[2]
CHATDOC = str(REPO / ".venv" / "bin" / "chatdoc")

RAW = ["Sarah Jones", "07700 900123", "sarah.jones@example.com", "943 476 5919", "42 Oak Road", "LS1 4AP"]
MESSAGES = [
    "Hi, my name is Sarah Jones and I've had chest pain for 3 days",
    "you can call me on 07700 900123 or email sarah.jones@example.com",
    "my nhs number is 943 476 5919 and I live at 42 Oak Road, LS1 4AP",
    "Sarah Jones again - I'm on metformin 500mg for my diabetes",
]


def test_no_raw_identifier_in_redis_through_the_graph(svc, chatdoc_redis_env):
    start = svc.start_consultation()
    sid = start.session_id
    svc.record_consent(sid)
    for m in MESSAGES:
        svc.send_message(sid, m)
    svc.summarize(sid)
    svc.end_consultation(sid)
    blob = dump_all(chatdoc_redis_env).lower()
    assert b"<person_1>" in blob and b"metformin 500mg" in blob
    for raw in RAW:
        for form in {raw, raw.replace(" ", ""), raw.lower()}:
            assert form.lower().encode() not in blob, raw


def test_transcript_summary_mts_dialog_and_aci():
    from chatdoc.service import summarize_transcript

    data = REPO.parent / "shared" / "data"
    mts = data / "mts-dialog" / "MTS-Dialog-ValidationSet.csv"
    if not mts.exists():
        pytest.skip("../shared/data not present")
    rows = list(csv.DictReader(mts.open(encoding="utf-8")))
    s = summarize_transcript(rows[0]["dialogue"])  # low back pain for about eight years
    assert s.structured["chief_complaint"] == "back pain"
    assert s.structured["hpi"]["duration"] == "about eight years"
    assert s.text.startswith("CC: back pain") and s.lay_text
    s2 = summarize_transcript("Doctor: Any fever?\nPatient: No.\nDoctor: Any cough?\nPatient: Yes, a dry cough for two days.")
    assert "fever" in s2.structured["ros"]["negatives"]
    aci = data / "aci-bench" / "valid.csv"
    arow = next(csv.DictReader(aci.open(encoding="utf-8")))
    s3 = summarize_transcript(arow["dialogue"])
    assert s3.structured["ros"]["positives"] or s3.structured["chief_complaint"]


def _cli(args, env, timeout=180):
    return subprocess.run([CHATDOC, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_one_turn_per_process_and_resume_after_sigkill(chatdoc_redis_env, redis_url, tmp_path):
    env = {**os.environ, "CHATDOC_REDIS_URL": redis_url, "CHATDOC_DIALOGUE_USE_MODEL_WORDING": "false"}
    # without consent: nothing stored, the reply asks for consent
    p = _cli(["chat", "--message", "I have a headache", "--json"], env)
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    sid = first["session_id"]
    assert first["awaiting_consent"] and first["phase"] == "consent"
    assert not [k for k in chatdoc_redis_env.scan_iter() if sid.encode() in k]
    p = _cli(["chat", "--session", sid, "--consent", "--message", "I've had a headache for 2 days, 6/10", "--json"], env)
    assert p.returncode == 0, p.stderr
    t1 = json.loads(p.stdout)
    assert t1["phase"] == "history" and t1["questions_asked"] == 1
    # a turn killed mid-run leaves the previous checkpoint; the same turn is sent again
    proc = subprocess.Popen([CHATDOC, "chat", "--session", sid, "--message", "no", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = _cli(["chat", "--session", sid, "--message", "no", "--json"], env)
    assert p.returncode == 0, p.stderr
    t2 = json.loads(p.stdout)
    assert t2["questions_asked"] in (2, 3)  # 2 if the killed turn never finished, else one more
    p = _cli(["sessions", "show", sid, "--json"], env)
    view = json.loads(p.stdout)
    slots = [q["slot"] for q in view["question_log"]]
    assert len(slots) == len(set(slots))
    patient = [m["text"] for m in view["transcript"] if m["role"] == "patient"]
    assert patient[0].startswith("I've had a headache") and len(patient) in (2, 3)
    p = _cli(["chat", "--session", "bad id", "--message", "x"], env)
    assert p.returncode != 0 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = _cli(["summarize", "--session", sid, "--json"], env)
    assert json.loads(p.stdout)["structured"]["hpi"]["severity"] == 6


@pytest.mark.slow
def test_model_wording_real_model(svc, backend, monkeypatch):
    from chatdoc.config import get_settings

    monkeypatch.setenv("CHATDOC_DIALOGUE_USE_MODEL_WORDING", "true")
    monkeypatch.setenv("CHATDOC_DIALOGUE_WORDING_MAX_NEW_TOKENS", "24")
    get_settings.cache_clear()
    start = svc.start_consultation()
    svc.record_consent(start.session_id)
    r = svc.send_message(start.session_id, "I've had a headache for 2 days")
    view = svc.get_state(start.session_id)
    q = view.question_log[-1]
    assert q["source"] in ("model", "template")
    assert r.reply.count("?") == 1 and len(r.reply.split()) <= 30
    from chatdoc.safety import guard_output

    assert guard_output(r.reply).ok
