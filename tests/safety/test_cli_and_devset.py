import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatdoc.cli import app
from chatdoc.tools.eval.triage import metrics, read_cases, run_cases

DEV = Path(__file__).parent / "data" / "triage_dev.jsonl"
runner = CliRunner()


def test_dev_set_shape():
    cases = read_cases(DEV, require_expected=True)
    assert len(cases) >= 100
    counts = {lv: sum(c["expected"] == lv for c in cases) for lv in ("emergency", "urgent", "routine", "self_care")}
    assert all(20 <= n <= 30 for n in counts.values()), counts
    assert all(c.get("source") for c in cases)
    assert sum(len(c["turns"]) > 1 for c in cases) >= 20


def test_dev_set_meets_targets():
    m = metrics(run_cases(read_cases(DEV, require_expected=True), per_turn=False))
    assert m["emergency_recall"] == 1.0, m["errors"]
    assert m["under_triage_rate"] <= 0.02, m["errors"]
    assert m["accuracy"] >= 0.85, m["errors"]
    assert m["self_care_sent_to_emergency"] == 0


def test_cli_triage_text():
    r = runner.invoke(app, ["triage", "--text", "I've got a fever and my neck is stiff", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["level"] == "emergency" and out["fired"][0]["id"] == "meningitis_signs"
    assert out["fired"][0]["evidence"] and out["crisis"] is False
    r = runner.invoke(app, ["triage", "--text", "I want to kill myself"])
    assert r.exit_code == 0 and "emergency" in r.output and "CRISIS: suicide" in r.output


def test_cli_triage_jsonl(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "a", "text": "runny nose"}\n{"id": "b", "turns": ["fever", "stiff neck"]}\n')
    r = runner.invoke(app, ["triage", "--jsonl", str(f), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [x["level"] for x in rows] == ["self_care", "emergency"]


def test_cli_eval_triage(tmp_path):
    r = runner.invoke(app, ["eval", "triage", "--cases", str(DEV)])
    assert r.exit_code == 0, r.output
    for word in ("accuracy", "emergency recall", "under-triage", "over-triage", "p50", "p95", "confusion"):
        assert word in r.output
    r = runner.invoke(app, ["eval", "triage", "--cases", str(DEV), "--json"])
    m = json.loads(r.output)
    assert m["cases"] >= 100 and set(m["latency_ms"]) >= {"p50", "p95"}


@pytest.mark.parametrize("content, needle", [
    (None, "not found"),
    ('{"id": 1, "text": "hi", "expected": "emergency"}\n{bad json\n', ":2: not valid JSON"),
    ('{"id": 1, "text": "hi", "expected": "soonish"}\n', "unknown level 'soonish'"),
    ('{"id": 1, "text": "hi"}\n', "missing \"expected\""),
    ('{"id": 1, "turns": []}\n', "needs \"text\""),
])
def test_cli_bad_input_one_line_error(tmp_path, content, needle):
    f = tmp_path / "cases.jsonl"
    if content is not None:
        f.write_text(content)
    r = runner.invoke(app, ["eval", "triage", "--cases", str(f)])
    assert r.exit_code != 0
    assert needle in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_triage_needs_one_input():
    r = runner.invoke(app, ["triage"])
    assert r.exit_code != 0 and "exactly one" in r.output
