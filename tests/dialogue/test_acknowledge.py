"""Acknowledgements: the runtime check (only the patient's facts), corrections and the template fallback."""

from __future__ import annotations

import pytest

from chatdoc.dialogue.respond import ack_template, check_ack, corrected_value
from chatdoc.tools.eval.conversation import ack_unsaid


@pytest.mark.parametrize("ack,patient", [
    ("I'm sorry your knee has been so swollen since Saturday.", "my knee has been really swollen since saturday"),
    ("Thank you, that's helpful.", "about two weeks"),
    ("That sounds really worrying.", "I'm scared it's something bad"),
    ("Thanks for telling me about the rash.", "there's a rash on my arm"),
])
def test_acknowledgements_that_only_use_the_patients_words_pass(ack, patient):
    assert check_ack(ack, patient) is None
    assert ack_unsaid(ack, patient) == []


@pytest.mark.parametrize("ack,patient,why", [
    ("That sounds like a migraine.", "bad headache for 2 days", "not_said"),
    ("I'm sorry your headache has lasted 5 days.", "headache for 3 days", "number_not_said"),
    ("How long has it been going on?", "my knee hurts", "not_a_statement"),
    ("You should take paracetamol.", "my knee hurts", "not_said"),
    ("Okay. Thank you. I see.", "no", "more_than_one_sentence"),
    ("Thank you for telling me about your pregnancy.", "no temperature and I'm definitely not pregnant", "denied"),
    ("Thanks for telling me about the fever.", "no fever but the cough is dry", "denied"),
])
def test_acknowledgements_with_facts_the_patient_did_not_say_are_rejected(ack, patient, why):
    assert (check_ack(ack, patient) or "").startswith(why)


@pytest.mark.parametrize("text,value", [
    ("sorry, I meant three weeks not two", "three weeks"),
    ("actually it's my left side, not the right", "your left side"),
    ("I misread it - it's 38.9 not 37.9", "38.9"),
    ("sorry she's 4, not 5", "4"),
])
def test_corrected_value_in_the_patients_words(text, value):
    assert corrected_value(text) == value
    assert value in ack_template(text, correction=True).text


def test_template_acknowledgements():
    assert "sorry" in ack_template("I'm really frightened about this", False).text.lower()
    assert ack_template("no", False).text == ""  # nothing to acknowledge beyond the answer itself
    assert "updated" in ack_template("actually scratch that", True).text
