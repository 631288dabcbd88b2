"""The history reads the turn analysis: attributes from the findings (one attribute reader), and the slots the
question policy relies on (found through the 107-case consultation eval)."""

from __future__ import annotations


def test_attributes_come_from_the_findings_and_a_bare_answer_from_the_turn():
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "I've had a throbbing headache on the left side of my head for 3 days, "
                           "it's 7/10 and worse in the mornings.", is_first=True)
    hpi = h["hpi"]
    assert hpi["character"] == "throbbing" and hpi["duration"] == "3 days" and hpi["severity"] == 7
    assert hpi["location"] == "left side of my head" and hpi["timing"] == "worse in the mornings"
    # an answer that names no symptom: the turn's own reading
    h, p, _ = extract_turn(h, p, "Lying in a dark room helps.", last_slot="hpi.relieving", question="Has anything helped?")
    assert h["hpi"]["relieving"] == "Lying in a dark room"
    h, p, _ = extract_turn(h, p, "It came on suddenly.", last_slot="hpi.onset", question="When did it start?")
    assert h["hpi"]["onset"] == "suddenly" or "suddenly" in h["hpi"]["onset"]


def test_symptoms_named_with_the_complaint_leave_other_symptoms_to_ask():
    from chatdoc.dialogue.extract import extract_turn, is_filled
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "I have been having a cough and shortness of breath.", is_first=True)
    assert h["hpi"].get("associated") and not is_filled("hpi.associated", h, p)
    h, p, _ = extract_turn(h, p, "Yes, I have a fever.", last_slot="hpi.associated",
                           question="Have you noticed any other symptoms?")
    assert is_filled("hpi.associated", h, p)


def test_past_episodes_keep_the_patients_words_and_leave_the_pmh_question():
    from chatdoc.dialogue.extract import extract_turn, is_filled
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "I had a sore throat and nasal congestion 8 weeks ago.", is_first=True)
    past = h.get("past_episodes") or []
    assert any("nasal congestion" in x and "8 weeks ago" in x for x in past), past
    assert not is_filled("pmh", h, p)


def test_a_birth_gestation_does_not_make_the_patient_pregnant():
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "My child was born prematurely at 32 weeks.", is_first=True)
    assert not p.get("pregnant") and "pregnant" not in h["ros"]["positives"]


def test_chief_complaint_without_a_reviewed_label_is_the_patients_words():
    from chatdoc.clinical.lexicon import get_lexicon
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history

    h, _, _ = extract_turn(empty_history(), {}, "Hello. I have been having right leg weakness and unsteady gait.",
                           is_first=True)
    if h["cc_concept"] not in get_lexicon().labels:
        assert "leg weakness" in h["chief_complaint"] and not h["chief_complaint"].endswith("weak")


def test_a_yes_that_names_another_symptom_is_not_a_yes_to_the_question():
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "I have been having confusion.", is_first=True)
    h, p, _ = extract_turn(h, p, "Yes, I have abdominal pain.", last_slot="ros.uti_symptoms",
                           question="Any pain or burning when you pass urine?")
    assert "uti_symptoms" not in h["ros"]["positives"]
    h, p, _ = extract_turn(h, p, "Yes.", last_slot="ros.fever", question="Have you had a fever?")
    assert "fever" in h["ros"]["positives"]
