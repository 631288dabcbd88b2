"""The one Typer CLI: every README command is registered, and the adapter commands go through the service."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from chatdoc.cli import app

runner = CliRunner()


def test_readme_commands_are_registered():
    for args in (["model"], ["adapters"], ["sessions"], ["personas"], ["train"], ["users"], ["eval"], ["bench"]):
        r = runner.invoke(app, [*args, "--help"])
        assert r.exit_code == 0, (args, r.output)
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {"model", "generate", "adapters", "chat", "sessions", "summarize", "triage", "redact", "train",
            "personas", "eval", "bench", "serve", "users"} <= names


def test_adapters_list_and_show_without_loading_the_model():
    from chatdoc.config import get_settings

    r = runner.invoke(app, ["adapters", "list", "--json"])
    assert r.exit_code == 0, r.output
    items = {a["name"]: a for a in json.loads(r.output)}
    shipped = get_settings().adapters.active
    assert items[shipped]["ok"] and items[shipped]["active"]
    r = runner.invoke(app, ["adapters", "show", shipped, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["lora"]["r"]
    r = runner.invoke(app, ["adapters", "show", "no-such-adapter"])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_personas_list():
    r = runner.invoke(app, ["personas", "list", "--json"])
    assert r.exit_code == 0, r.output
    assert {"gp", "paediatric", "triage_nurse"} <= {p["name"] for p in json.loads(r.output)}


def test_bench_llm_runs_one_engine_and_writes_json(tmp_path):
    import pytest

    pytest.importorskip("llama_cpp")
    out = tmp_path / "llm.json"
    r = runner.invoke(app, ["bench", "llm", "--engines", "llamacpp", "--rounds", "1", "--new-tokens", "4",
                            "--adapter", "", "--threads", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    e = res["engines"]["llamacpp"]
    assert "llama-cpp-python" in e["engine"] and e["base"]["new_tokens"] == 4 and e["base"]["decode_tok_s"] > 0
    assert "llamacpp" in r.output and "base tok/s" in r.output
    bad = runner.invoke(app, ["bench", "llm", "--engines", "nonsense"])
    assert bad.exit_code == 2
