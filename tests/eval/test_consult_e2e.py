"""ONE end-to-end `chatdoc eval consult` on a scripted YAML patient through the real service."""

import json

import pytest
from typer.testing import CliRunner

from chatdoc.config import REPO_ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("chatdoc.service", reason="chatdoc.service not implemented yet")


def test_eval_consult_end_to_end(chatdoc_redis_env, backend, tmp_path):
    from chatdoc.cli import app

    res = CliRunner().invoke(
        app,
        ["eval", "consult", "--cases", str(REPO_ROOT / "personas" / "patients" / "sore-throat-01.yaml"),
         "--max-turns", "3", "--json", "--out", str(tmp_path), "--no-results-md"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    s = out["summary"]
    assert s["cases"] == 1 and s["errors"] == 0, out["cases"][0].get("error")
    case = out["cases"][0]
    assert 1 <= case["turns"] <= 3
    assert case["summary_text"].strip()
    assert 0.0 <= case["coverage"] <= 1.0
    assert case["transcript"][1]["role"] == "patient" and "34-year-old woman" in case["transcript"][1]["text"]
    assert (tmp_path / "consult.json").exists()
