"""ACI-BENCH section extraction on a real valid note, ROUGE on a known pair, the doctor-turns baseline."""

import csv

import pytest

from tests.shared_data import SHARED_DATA, needs_shared_data
from chatdoc.tools.eval.summary_eval import aci_subjective, evaluate, first_doctor_turns, load_aci, load_mts, note_sections, rouge

DATA = SHARED_DATA
pytestmark = needs_shared_data


@pytest.fixture(scope="module")
def aci_rows():
    with open(DATA / "aci-bench" / "valid.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_sections_of_real_note(aci_rows):
    note = aci_rows[0]["note"]
    secs = note_sections(note)
    assert list(secs)[:4] == ["CHIEF COMPLAINT", "HISTORY OF PRESENT ILLNESS", "REVIEW OF SYSTEMS", "PHYSICAL EXAMINATION"]
    sub = aci_subjective(note)
    assert sub.startswith("Follow-up of chronic problems.")
    assert "Endorses bloating." in sub  # last ROS line
    assert "JVD" not in sub and "ASSESSMENT" not in sub and "Echocardiogram" not in sub


def test_abbreviated_headers(aci_rows):
    note = aci_rows[1]["note"]  # "CC:" / "HPI:" style
    sub = aci_subjective(note)
    assert sub.startswith("Right knee pain.") and "lightbulb" in sub
    assert "Ibuprofen, digoxin" not in sub  # CURRENT MEDICATIONS is not in the CC/HPI/ROS reference


def test_every_valid_note_has_a_reference():
    items = load_aci(DATA / "aci-bench" / "valid.csv")
    assert len(items) == 20 and all(it["reference"] for it in items)


def test_rouge_known_pair():
    assert rouge("the cat sat on the mat", "the cat sat on the mat") == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    r = rouge("the patient reports knee pain", "patient reported pain in the knee")
    # stemmed unigrams: the patient report knee pain (5) vs patient report pain in the knee (6): 5 shared
    assert r["rouge1"] == pytest.approx(100 * 2 * (5 / 6) * (5 / 5) / ((5 / 6) + 1), abs=0.01)
    assert rouge("abc def", "xyz")["rouge1"] == 0.0


def test_first_doctor_turns_both_formats():
    aci = "[doctor] hi there .\n[patient] hello .\n[doctor] what brings you in ?\n[doctor] third"
    assert first_doctor_turns(aci, 2) == "hi there .\nwhat brings you in ?"
    mts = "Doctor: How old are you?\nPatient: 40.\nDoctor: Any pain?"
    assert first_doctor_turns(mts) == "How old are you?\nAny pain?"


def test_baseline_on_valid_split_is_near_paper():
    items = load_aci(DATA / "aci-bench" / "valid.csv")
    res = evaluate(items, "aci-bench", summarize=lambda text: "")
    assert 18 < res["baseline_first12_doctor_turns"]["rouge1"] < 30  # paper (test set 1): 23.7
    assert res["chatdoc"]["rouge1"] == 0.0
    mts = load_mts(DATA / "mts-dialog" / "MTS-Dialog-ValidationSet.csv")
    assert len(mts) == 100
