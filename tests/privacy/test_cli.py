"""``chatdoc redact`` and ``chatdoc eval pii`` through the real Typer app."""

import json
from pathlib import Path

from typer.testing import CliRunner

from chatdoc.cli import app

runner = CliRunner()
DEV = Path(__file__).parent / "data" / "pii_dev.jsonl"


def test_redact_stdin(redactor):
    r = runner.invoke(app, ["redact"], input="my name is john smith, call 07700 900123\n")
    assert r.exit_code == 0, r.output
    assert r.output == "my name is <PERSON_1>, call <PHONE_1>\n"


def test_redact_json(redactor):
    r = runner.invoke(app, ["redact", "--json"], input="I'm 93, email a@b.com")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["text"] == "I'm <AGE_1>, email <EMAIL_1>"
    assert [(e["type"], e["start"], e["end"], e["placeholder"]) for e in out["entities"]] == [
        ("AGE", 4, 6, "<AGE_1>"), ("EMAIL", 14, 21, "<EMAIL_1>")]
    assert all(0 < e["score"] <= 1 for e in out["entities"])


def test_eval_pii_json(redactor, tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(DEV.read_text().splitlines()[:40]) + "\n")
    r = runner.invoke(app, ["eval", "pii", "--jsonl", str(small), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["examples"] == 40 and "per_type" in res and "p95" in res["latency_ms"]
    r = runner.invoke(app, ["eval", "pii", "--jsonl", str(small)])
    assert r.exit_code == 0 and "identifier recall" in r.output


def test_eval_pii_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    r = runner.invoke(app, ["eval", "pii", "--jsonl", str(bad)])
    assert r.exit_code != 0
    assert "bad.jsonl:1: not valid JSON" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["eval", "pii", "--jsonl", str(tmp_path / "nope.jsonl")])
    assert r.exit_code != 0 and "not found" in r.output
