"""The committed dev set is what the generator writes, covers every type, and meets the targets."""

import json
from pathlib import Path

import pytest

from chatdoc.tools.eval.pii import EvalDataError, load_jsonl, score
from chatdoc.privacy.recognizers import ENTITY_TYPES

DEV = Path(__file__).parent / "data" / "pii_dev.jsonl"


@pytest.fixture(scope="module")
def result(redactor):
    return score(redactor, load_jsonl(DEV))


def test_devset_shape():
    rows = load_jsonl(DEV)
    assert len(rows) >= 300
    counts = {}
    for r in rows:
        for s in r["spans"]:
            counts[s["type"]] = counts.get(s["type"], 0) + 1
    assert set(counts) == set(ENTITY_TYPES)
    assert min(counts.values()) >= 20, counts
    assert sum(len(r["keep"]) for r in rows) >= 150


def test_generator_reproduces_committed_file():
    pytest.importorskip("faker")
    from chatdoc.tools.eval.pii_devset import generate

    assert [json.dumps(r, ensure_ascii=False) for r in generate()] == DEV.read_text(encoding="utf-8").splitlines()


def test_targets(result):
    assert result["identifier_recall"] >= 0.95
    assert result["clinical_retention"] >= 0.99
    for t, m in result["per_type"].items():
        assert m["recall"] >= 0.90, (t, m)
    assert result["latency_ms"]["p50"] < 30


def test_bad_input_is_reported(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "abc", "spans": [{"start": 0, "end": 9, "type": "PERSON"}]}\n')
    with pytest.raises(EvalDataError, match=r"bad.jsonl:1: spans\[0\]"):
        load_jsonl(p)
