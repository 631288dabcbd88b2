"""Case loading: AgentClinic OSCE records as published, and our YAML case format."""

from pathlib import Path

import pytest

from chatdoc.config import REPO_ROOT
from tests.shared_data import SHARED_DATA, needs_shared_data
from chatdoc.tools.eval.cases import CaseError, case_from_yaml, load_agentclinic, load_cases, text_items

AGENTCLINIC = SHARED_DATA / "agentclinic" / "agentclinic_medqa.jsonl"
PATIENTS = REPO_ROOT / "personas" / "patients"


@pytest.fixture(scope="module")
def cases():
    if not AGENTCLINIC.exists():
        pytest.skip(f"shared data missing: {AGENTCLINIC}")
    return load_agentclinic(AGENTCLINIC)


def test_all_107_cases_parse_with_facts(cases):
    assert len(cases) == 107
    assert len({c.id for c in cases}) == 107
    assert all(c.primary and c.facts for c in cases)
    assert all(c.age for c in cases)
    kinds = {f.kind for c in cases for f in c.facts}
    assert {"symptom", "pmh", "social", "ros_positive", "ros_negative", "medication", "family"} <= kinds


def test_first_case_facts_per_category(cases):
    c = cases[0]  # myasthenia gravis
    assert (c.age, c.sex, c.primary) == ("35", "female", "Double vision")
    by = {k: [f.text for f in v] for k, v in c.facts_by_kind().items()}
    assert by["symptom"] == ["Difficulty climbing stairs", "Weakness in upper limbs", "Improvement of symptoms after rest"]
    assert by["social"] == ["Non-smoker", "drinks wine occasionally", "Works as a graphic designer"]
    assert by["ros_negative"] == ["chest pain", "palpitations", "shortness of breath", "recent infections"]
    assert "pmh" not in by  # "No significant past medical history." is not a fact
    assert [f.negated for f in c.facts_by_kind()["social"]] == [True, False, False]
    assert c.diagnosis == "Myasthenia gravis"


def test_list_and_mapping_fields(cases):
    c17 = cases[17]  # PMH as a list, Current_Medications list
    assert [f.text for f in c17.facts_by_kind()["medication"]] == ["Insulin", "Mesalamine", "Enalapril", "Aspirin"]
    assert "Hypertension" in [f.text for f in c17.facts_by_kind()["pmh"]]
    c60 = cases[60]  # Review_of_Systems as a mapping
    ros = c60.facts_by_kind()
    assert "dizziness" in [f.text for f in ros["ros_negative"]]
    assert any("ear" in f.text for f in ros["ros_positive"])


def test_pmh_negatives_and_exceptions(cases):
    c40 = cases[40]
    pmh = {f.text: f.negated for f in c40.facts_by_kind()["pmh"]}
    assert pmh["renal dialysis"] is True
    c10 = cases[10]  # "unremarkable except for 5 normal vaginal deliveries"
    assert [f.text for f in c10.facts_by_kind()["pmh"]] == ["5 normal vaginal deliveries"]


def test_text_items_mixed_polarity():
    items = text_items("Complains of minor difficulty in breathing but denies any urinary pain, headache, or diarrhea.")
    assert items == [("minor difficulty in breathing", False), ("urinary pain", True), ("headache", True), ("diarrhea", True)]


def test_yaml_cases_load():
    cs = load_cases(PATIENTS)
    assert len(cs) >= 3
    c = next(x for x in cs if x.id == "sore-throat-01")
    assert c.age == "34" and c.sex == "female" and c.opening
    assert {f.kind for f in c.facts} >= {"symptom", "pmh", "medication", "allergy", "social", "ros_negative"}
    assert all(f.negated for f in c.facts if f.kind == "ros_negative")


def test_yaml_case_errors(tmp_path: Path):
    with pytest.raises(CaseError):
        case_from_yaml({"id": "x", "opening": "hi", "facts": [{"text": "a", "kind": "bogus"}]}, "x")
    with pytest.raises(CaseError):
        case_from_yaml({"id": "x"}, "x")
    with pytest.raises(CaseError):
        load_cases(tmp_path / "missing.jsonl")
