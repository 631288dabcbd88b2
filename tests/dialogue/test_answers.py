"""Answers to the patient's own questions: class, level consistency, no doses, no diagnosis (no model needed)."""

from __future__ import annotations

import re

import pytest

from chatdoc.dialogue.answers import answer, classify
from chatdoc.tools.eval.conversation import below_level

LEVELS = ("emergency", "urgent", "routine", "self_care")


@pytest.mark.parametrize("question,cls", [
    ("Is this something I need to worry about?", "worry"),
    ("do u think its serious", "worry"),
    ("What should I do now, go to the walk-in centre?", "what_to_do"),
    ("do I need to ring 111 tonight?", "what_to_do"),
    ("Can I still go to the gym with this?", "can_i"),
    ("is it ok to give him calpol with the antibiotics?", "can_i"),
    ("What does 'benign' mean?", "what_is"),
    ("what's tinnitus exactly?", "what_is"),
    ("how long do chest infections usually hang around?", "how_long"),
    ("when will it clear up?", "how_long"),
    ("When will the doctor phone me back?", "practical"),
    ("can I get a fit note for work?", "practical"),
    ("how many co-codamol can I have in a day?", "dose"),
    ("can you up my dose of sertraline?", "dose"),
    ("Do I have diabetes?", "diagnosis"),
    ("could this be appendicitis?", "diagnosis"),
])
def test_classes(question, cls):
    assert classify(question) == cls


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("question", ["should I be worried?", "what should I do?", "can I go to work?",
                                      "when will someone call me?", "how much ibuprofen can I take?", "is it cancer?"])
def test_answers_never_say_less_than_the_level(question, level):
    a = answer(question, level=level)
    assert a.handling == "answered" and a.text
    assert not below_level(a.text, level), a.text
    if level == "emergency":
        assert "999" in a.text
    if level == "urgent":
        assert "today" in a.text


@pytest.mark.parametrize("level", LEVELS)
def test_no_dose_and_no_diagnosis(level):
    dose = answer("how many paracetamol can I take in a day?", level=level)
    assert dose.qclass == "dose" and not re.search(r"\d+\s*(?:mg|tablets?|times)", dose.text)
    assert "can't advise on doses" in dose.text
    dx = answer("have I got shingles?", level=level)
    assert dx.qclass == "diagnosis" and "can't diagnose" in dx.text


def test_knowledge_question_without_a_passage_is_handed_to_the_team():
    class Nothing:
        text, supported, reason, method, passage, url, title = "", False, "nothing relevant retrieved", "none", None, None, None

    a = answer("what is a wibble-wobble syndrome?", level="routine", grounded=lambda q: Nothing())
    assert a.handling == "handed_over" and "clinical team" in a.text and a.reasons == ["nothing relevant retrieved"]
    a = answer("what is a wibble-wobble syndrome?", level="urgent", grounded=None)
    assert a.handling == "handed_over" and "today" in a.text
