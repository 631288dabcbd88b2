"""The simulated patient answers from its record (real BM25), says it doesn't know, denies negatives."""

import pytest

from chatdoc.config import REPO_ROOT
from tests.shared_data import SHARED_DATA, needs_shared_data
from chatdoc.tools.eval.cases import load_agentclinic, load_cases
from chatdoc.tools.eval.simpatient import SimulatedPatient

AGENTCLINIC = SHARED_DATA / "agentclinic" / "agentclinic_medqa.jsonl"
pytestmark = needs_shared_data


@pytest.fixture(scope="module")
def mg_case():
    return load_agentclinic(AGENTCLINIC)[0]


def test_opening_has_complaint_age_sex_in_lay_words(mg_case):
    p = SimulatedPatient(mg_case)
    o = p.opening()
    assert "35-year-old woman" in o and "double vision" in o
    hematuria = load_agentclinic(AGENTCLINIC)[40]
    o2 = SimulatedPatient(hematuria).opening()
    assert "blood in my urine" in o2 and "hematuria" not in o2.lower() and "42-year-old man" in o2


def test_answers_from_record(mg_case):
    p = SimulatedPatient(mg_case)
    assert "graphic designer" in p.answer("What do you do for work?")
    a = p.answer("Have you noticed any weakness?")
    assert a.startswith("Yes") and "weakness in upper limbs" in a
    assert "wine" in p.answer("Do you drink alcohol?")
    assert p.disclosed == {1, 4, 5}


def test_denies_negatives(mg_case):
    p = SimulatedPatient(mg_case)
    assert p.answer("Do you have any chest pain?") == "No, I haven't had any chest pain."
    assert p.answer("Do you smoke?").startswith("No")
    a = p.answer("Any palpitations or shortness of breath?")
    assert "palpitations" in a and "shortness of breath" in a and a.startswith("No")


def test_says_it_does_not_know(mg_case):
    p = SimulatedPatient(mg_case)
    assert p.answer("Any blood in your urine?") == "Not that I know of."
    assert p.answer("Are you allergic to anything?") == "Not that I know of."
    assert p.answer("Are you taking any medications?") == "Not that I know of."
    assert p.answer("What did you have for breakfast?") == "I don't know."
    assert p.answer("Is there any chance you could be pregnant?") == "Not that I know of."
    assert p.answer("Do you have any allergies to medicines?") == "Not that I know of."


def test_no_question_no_disclosure(mg_case):
    p = SimulatedPatient(mg_case)
    assert p.answer("Thank you, that is helpful.") == "Okay, thank you."
    assert p.disclosed == set()


def test_yaml_patient_categories():
    c = next(x for x in load_cases(REPO_ROOT / "personas" / "patients") if x.id == "sore-throat-01")
    p = SimulatedPatient(c)
    assert "penicillin" in p.answer("Do you have any allergies?")
    assert "salbutamol" in p.answer("Do you take any medicines?")
    assert "three days ago" in p.answer("How long has this been going on?")
    assert "cough" in p.answer("Do you have a cough?") and p.said[-1].startswith("No")


def test_social_question_answered_from_whatever_section_holds_it():
    """AgentClinic files "denies recent travel" under Review_of_Systems in some cases: asked about travel,
    the patient still denies it."""
    cases = load_agentclinic(AGENTCLINIC)
    case = next(c for c in cases if any(f.kind == "ros_negative" and "travel" in f.text.lower() for f in c.facts)
                and not any(f.kind == "social" and "travel" in f.text.lower() for f in c.facts))
    p = SimulatedPatient(case)
    a = p.answer("Have you travelled recently?")
    assert a.startswith("No") and "travel" in a
    assert p.answer("Do you ride horses?") in ("Not that I know of.", "I don't know.")
