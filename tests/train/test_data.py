"""Data builders on the real shared files: counts, cleaning, no leakage, runtime prompt format."""

import json
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from chatdoc.llm.prompt import Turn, render
from chatdoc.train.data import (
    DataError,
    default_system,
    detokenize,
    load_aci,
    load_chatdoctor,
    load_jsonl,
    load_mts,
)


def test_counts_per_source_and_split(dataset):
    rep = dataset.report
    for src in ("mts", "aci", "chatdoctor"):
        assert rep["sources"][src]["samples"].get("train", 0) > 0, src
        assert rep["sources"][src]["license"]
    assert rep["sources"]["mts"]["samples"]["eval"] > 300  # MTS-Dialog validation split
    assert rep["sources"]["mts"]["conversations"]["eval"] == 100
    assert rep["totals"]["validation"] > 0
    assert rep["sources"]["chatdoctor"]["conversations"]["train"] + rep["sources"]["chatdoctor"]["conversations"].get(
        "validation", 0) == 300


def test_no_empty_or_duplicate_samples(dataset):
    keys = [(s.prompt, s.completion) for s in dataset.samples]
    assert len(keys) == len(set(keys))
    assert all(s.completion.strip() for s in dataset.samples)
    assert all(s.prompt.endswith("Doctor:") and s.completion.startswith(" ") and s.completion.endswith("\n")
               for s in dataset.samples)


def test_split_by_conversation_and_mts_validation_is_eval_only(dataset):
    splits = defaultdict(set)
    for s in dataset.samples:
        splits[s.conv_id].add(s.split)
    assert all(len(v) == 1 for v in splits.values())  # no conversation on both sides
    for conv_id, v in splits.items():
        if conv_id.startswith("mts-valid-"):
            assert v == {"eval"}
        else:
            assert "eval" not in v
    # nothing identical to an eval sample is trained on
    eval_keys = {(s.prompt, s.completion) for s in dataset.split("eval")}
    assert not any((s.prompt, s.completion) in eval_keys for s in dataset.split("train"))


def test_prompt_is_the_runtime_render(dataset, data_dir, count_tokens):
    system = default_system()
    convs = {c.id: c for c in load_mts(data_dir) + load_aci(data_dir)}
    checked = 0
    for s in dataset.samples:
        c = convs.get(s.conv_id)
        if c is None:
            continue
        assert s.prompt == render(system, c.turns[s.context_start : s.turn_index])
        assert s.completion == " " + c.turns[s.turn_index].text + "\n"
        assert c.turns[s.turn_index].role == "doctor"
        assert count_tokens(s.prompt) + count_tokens(s.completion) <= 384
        checked += 1
    assert checked > 5000
    truncated = [s for s in dataset.samples if s.source == "aci" and s.context_start > 0]
    assert truncated  # long ACI visits are cut from the oldest turns


def test_speaker_tags_are_cleaned(dataset, data_dir):
    for s in dataset.samples:
        text = s.prompt + s.completion
        assert "Guest_family" not in text and "Guest_clinician" not in text and "[doctor]" not in text
        assert "[patient]" not in text and "Doctor_2" not in text
    mts = load_mts(data_dir)
    assert all(t.role in ("patient", "doctor") and t.text for c in mts for t in c.turns)
    assert all(c.turns[i].role != c.turns[i + 1].role for c in mts for i in range(len(c.turns) - 1))
    cd = load_chatdoctor(data_dir, limit=5)
    assert [t.role for t in cd[0].turns] == ["patient", "doctor"]


def test_detokenize_aci_spacing():
    assert detokenize("i do n't know , um . it's been bad ?") == "I don't know, um. It's been bad?"


def test_jsonl_format_and_errors(tiny_jsonl, tmp_path):
    convs = load_jsonl(tiny_jsonl)
    assert len(convs) == 4 and convs[2].system == "You are a paediatric nurse."
    assert convs[0].turns[1] == Turn("doctor", "Do you have a fever?")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": [{"role": "patient", "text": "hi"}]}\n{"turns": [{"role": "nurse", "text": "x"}]}\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        load_jsonl(bad)
    bad.write_text("not json\n")
    with pytest.raises(DataError, match=":1: not valid JSON"):
        load_jsonl(bad)


def test_cli_data_counts_and_errors(data_dir, tiny_jsonl, tmp_path):
    from chatdoc.cli import app

    runner = CliRunner()
    out = tmp_path / "samples.jsonl"
    r = runner.invoke(app, ["train", "data", "--sources", "mts", "--jsonl", str(tiny_jsonl), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["sources"]["jsonl"]["samples"]["train"] + rep["sources"]["jsonl"]["samples"].get("validation", 0) == 7
    assert rep["written"]["samples"] == sum(rep["totals"].values())
    assert len(out.read_text().splitlines()) == rep["written"]["samples"]
    r = runner.invoke(app, ["train", "data", "--sources", "mts,nope"])
    assert r.exit_code != 0 and "unknown source" in r.output and len(r.output.strip().splitlines()) == 1
