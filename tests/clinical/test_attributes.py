"""The one symptom-attribute reader (chatdoc.clinical.attributes), the findings that carry its readings, and the
analysis fixes found through the 107-case consultation eval."""

from __future__ import annotations

from chatdoc.clinical.analyse import analyse_turn
from chatdoc.clinical.attributes import read_attributes


def test_read_attributes_socrates():
    a = read_attributes("It started 3 days ago, a throbbing pain on the left side of my head, worse when I bend over, "
                        "paracetamol helps. It's 7/10 and comes and goes, it spreads to my neck.")
    assert a.onset == "3 days ago" and a.duration == "3 days"
    assert a.character == "throbbing" and a.site == "left side of my head"
    assert a.aggravating == "I bend over" and a.relieving == "paracetamol"
    assert a.severity == "7/10" and a.severity_score == 7
    assert a.timing == "comes and goes" and a.radiation == "my neck"


def test_read_attributes_short_answers():
    assert read_attributes("about two weeks").duration is None  # a bare answer: the history reads it as the slot's answer
    assert read_attributes("for about two weeks").duration == "about two weeks"
    assert read_attributes("It came on suddenly").onset_speed == "suddenly"
    assert read_attributes("it doesn't spread anywhere").radiation_denied
    assert read_attributes("nothing helps").relieving.startswith("nothing")


def test_findings_carry_the_attributes_of_their_sentence():
    f = analyse_turn("I've had a sharp pain in my chest for 2 hours. I also feel sick.")
    pain = next(x for x in f.items if x.kind == "symptom" and "chest" in x.evidence.lower() + x.concept)
    assert pain.attributes.character == "sharp" and pain.attributes.duration == "2 hours"
    assert pain.attributes.duration_hours == 2
    sick = [x for x in f.items if x.kind == "symptom" and "sick" in x.evidence.lower()]
    assert all(x.attributes.character is None for x in sick)  # another sentence's attributes are not its own
    assert f.attributes.character == "sharp"  # the turn's own reading


def test_a_list_introducer_keeps_the_negation():
    f = analyse_turn("No, I haven't had any systemic symptoms such as fever.")
    assert [x.assertion for x in f.items if x.concept == "fever"] == ["absent"]


def test_a_birth_gestation_is_not_a_pregnancy():
    for text in ("Premature birth at 33 weeks of gestation.", "My son was born at 39 weeks gestation.",
                 "My child was born prematurely at 32 weeks."):
        f = analyse_turn(text)
        assert not [x for x in f.items if x.concept == "pregnant"], text
        assert [x.when for x in f.items if x.concept == "birth_gestation"] == ["at birth"], text
    f = analyse_turn("I'm 33 weeks pregnant and worried about a premature birth.")
    assert {x.assertion for x in f.items if x.concept == "pregnant"} == {"present"}
