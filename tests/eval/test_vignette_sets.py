"""Urgency-labelled vignette sets: the map covers every diagnosis, outputs are valid, text keeps negations."""

import json

import pytest

from chatdoc.config import REPO_ROOT
from chatdoc.tools.eval import build_vignette_sets as b
from tests.shared_data import SHARED_DATA, needs_shared_data

MAP = REPO_ROOT / "configs" / "urgency_map.yaml"
AVEY = SHARED_DATA / "vignettes" / "avey_vignettes.jsonl"
AC = SHARED_DATA / "agentclinic" / "agentclinic_medqa.jsonl"
OUT = REPO_ROOT / "tests" / "evalsets"


def test_map_is_valid():
    table, overrides = b.load_map(MAP)
    assert table and overrides
    assert all(e["level"] in b.LEVELS for e in table.values())
    assert all(o["level"] in b.LEVELS and o["reason"].strip() for o in overrides.values())


@needs_shared_data
def test_every_diagnosis_covered_and_every_override_used():
    if not AVEY.exists():
        pytest.skip(f"shared data missing: {AVEY}")
    sets, skipped, _ = b.build(AVEY, AC, MAP)
    assert skipped == []
    assert len(sets["avey"]) == 400 and len(sets["agentclinic"]) == 107


@needs_shared_data
def test_committed_sets_match_builder(tmp_path):
    if not AVEY.exists():
        pytest.skip(f"shared data missing: {AVEY}")
    assert b.main(["--avey", str(AVEY), "--agentclinic", str(AC), "--out-dir", str(tmp_path)]) == 0
    for name in ("vignettes.jsonl", "agentclinic.jsonl"):
        assert (tmp_path / name).read_text() == (OUT / name).read_text(), f"{name} is stale: rebuild it"


def test_committed_sets_are_valid():
    paths = [OUT / "vignettes.jsonl", OUT / "agentclinic.jsonl"]
    assert b.check_outputs(paths) == []
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["text"].startswith("I'm ") for r in rows)


def test_bad_records_are_skipped_not_fatal(tmp_path):
    avey = tmp_path / "a.jsonl"
    avey.write_text('{"correct_diagnosis": "Common Cold", "demographics": "30 year old Male", '
                    '"presentation": "He has a runny nose.", "absent_findings": "No fever, Not a smoker"}\n'
                    "not json\n"
                    '{"correct_diagnosis": "Made-up disease", "demographics": "30 year old Male", '
                    '"presentation": "x"}\n{"demographics": "1 year old Male"}\n')
    ac = tmp_path / "c.jsonl"
    ac.write_text('{"OSCE_Examination": {}}\n')
    sets, skipped, _ = b.build(avey, ac, MAP)
    assert [r["id"] for r in sets["avey"]] == ["avey-0001"]
    assert sets["avey"][0]["expected"] == "self_care"
    assert sets["avey"][0]["text"] == ("I'm a 30 year old man. I have a runny nose. I haven't had fever. "
                                       "I don't smoke.")
    assert len([s for s in skipped if not s.startswith("override")]) == 4


@pytest.mark.parametrize("src, sex, want", [
    ("He reports chest pain. He is a smoker and his father had an MI.", "male",
     "I report chest pain. I am a smoker and my father had an MI."),
    ("She denies fever. Her daughter says that she noticed her weight gain.", "female",
     "I deny fever. My daughter says that she noticed her weight gain."),
    ("His wife says she is worried about him.", "male", "My wife says she is worried about me."),
    ("Presents with cough that does not change with position.", "male",
     "I present with cough that does not change with position."),
])
def test_first_person(src, sex, want):
    assert b.to_first_person(src, sex) == want
