"""The frozen evaluation sets: split by id, bad lines reported not fatal, voiced scripts take their case's level,
and the findings scorer's span alignment."""

from __future__ import annotations

import json

from chatdoc.tools.eval import sets
from chatdoc.tools.eval.findings_eval import evaluate


def test_the_split_is_fixed_by_the_case_id_and_a_retelling_goes_with_its_case():
    assert sets.split_of({"id": "avey-0001"}) == sets.split_of({"id": "avey-0001-voiced", "case": "avey-0001"})
    got = {sets.split_of({"id": f"x-{i}"}) for i in range(40)}
    assert got == {"dev", "test"}


def test_the_shipped_sets_load_without_problems_and_both_splits_cover_every_source():
    dev, p1 = sets.triage_cases("dev")
    test, p2 = sets.triage_cases("test")
    assert not p1 and not p2
    assert {c["origin"] for c in dev} == {c["origin"] for c in test} >= {"own", "avey", "agentclinic", "avey-voiced"}
    assert not {c["id"] for c in dev} & {c["id"] for c in test}


def test_bad_lines_are_skipped_and_reported(tmp_path):
    (tmp_path / "own_scripts.jsonl").write_text("\n".join([
        json.dumps({"id": "a", "turns": ["chest pain"], "expected": "urgent", "origin": "own"}),
        "{not json", json.dumps({"turns": ["no id"]}),
        json.dumps({"id": "b-voiced", "case": "missing", "turns": ["hi"], "origin": "own"})]) + "\n")
    cases, problems = sets.triage_cases("all", tmp_path)
    assert [c["id"] for c in cases] == ["a"]
    assert len(problems) >= 3  # the bad JSON, the line without an id, the retelling of an unknown case, missing files


def test_the_findings_scorer_aligns_spans_and_compares_assertions():
    cases = [{"id": "u1", "origin": "t", "text": "I have a headache but no fever",
              "findings": [{"span": "headache", "assertion": "present"}, {"span": "fever", "assertion": "absent"}]},
             {"id": "u2", "origin": "t", "text": "I have asthma and my dad had a stroke",
              "findings": [{"span": "stroke", "assertion": "family"}]}]
    m = evaluate(cases)
    assert m["gold_findings"] == 3 and m["found"] == 3, m
    assert m["assertions"]["present"]["recall"] == 1.0 and m["assertions"]["absent"]["recall"] == 1.0
    assert m["assertions"]["family"]["recall"] == 1.0
