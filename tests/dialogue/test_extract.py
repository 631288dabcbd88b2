"""History extraction, the transcript narrative and the summary on their own: pure logic, no Redis, no graph."""

from __future__ import annotations


def test_self_negating_concept_is_a_positive_finding():
    """A red-flag concept whose own wording is a negation ("spots do not blanch") is a POSITIVE finding."""
    from chatdoc.dialogue.extract import extract_turn, find_concepts
    from chatdoc.dialogue.state import empty_history

    for text in ("The spots do not blanch with pressure.", "The rash doesn't fade when I press a glass on it.",
                 "No, the spots don't fade when I press a glass."):
        hits = [h for h in find_concepts(text) if h.concept == "non_blanching_rash"]
        assert hits and not hits[0].negated, text
        h, _, _ = extract_turn(empty_history(), {}, text)
        assert h["cc_concept"] == "non_blanching_rash" or "non_blanching_rash" in h["ros"]["positives"]
        assert "non_blanching_rash" not in h["ros"]["negatives"]
        h2, _, _ = extract_turn(h, {}, text)  # later turns: recorded as a positive, never a negative
        assert "non_blanching_rash" not in h2["ros"]["negatives"]
    assert not find_concepts("He is not breathing.")[0].negated
    # a negation before the concept still denies it; ordinary negation still works
    assert find_concepts("My neck isn't stiff.")[0].negated


def test_unknown_answers_and_off_topic_free_text_are_not_facts():
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history

    h, p, _ = extract_turn(empty_history(), {}, "Hello. I'm a 45-year-old man. I have been having double vision.",
                           is_first=True)
    assert h["chief_complaint"] and "hello" not in h["chief_complaint"].lower()
    h, p, _ = extract_turn(h, p, "Not that I know of.", last_slot="family_history", question="Do any illnesses run in your family?")
    assert "family_history" not in h["denied"] and not h["family_history"]
    h, p, _ = extract_turn(h, p, "No.", last_slot="ros.no_urine", question="Have you been passing urine as normal?")
    assert "no_urine" not in h["ros"]["negatives"] and "no_urine" not in h["ros"]["positives"]
    h, p, _ = extract_turn(h, p, "I experienced a prolonged course during labor.", last_slot="hpi.character",
                           question="How would you describe it?")
    assert not h["hpi"].get("character") and any("prolonged course" in x for x in h["other"])


def test_transcript_narrative_uses_only_the_patients_substantive_statements():
    from chatdoc.dialogue.transcript import narrative

    text = narrative(["Yes.", "I have had a cough for three weeks. It is worse at night.", "Okay."])
    assert "cough for three weeks" in text and "worse at night" in text
    assert "Yes" not in text and "Okay" not in text
    assert narrative(["no", "nope"]) == ""


def test_answers_are_attributed_only_to_what_was_said():
    """Found on the 107 AgentClinic cases: a 'yes' to a symptom checklist, a past diagnosis and a synonym
    must not put words in the patient's mouth."""
    from chatdoc.dialogue.extract import extract_turn
    from chatdoc.dialogue.state import empty_history
    from chatdoc.dialogue.summary import build_summary

    checklist = "Have you had any of these: chest pain, cough, nausea or headaches?"
    h, p, _ = extract_turn(empty_history(), {}, "My left wrist hurts.", is_first=True)
    h, p, _ = extract_turn(h, p, "Yes, I have nausea.", last_slot="ros.chest_pain", question=checklist)
    assert h["ros"]["positives"] == ["nausea"]  # not chest pain, cough and headache too
    # "I don't know" is not a pertinent negative
    h, p, _ = extract_turn(h, p, "I don't know.", last_slot="ros.sleep_problems", question="How are you sleeping?")
    assert "sleep_problems" not in h["ros"]["negatives"]
    # a past diagnosis is PMH, not a current symptom; "a 3-week history of" is the current illness
    h, p, _ = extract_turn(h, p, "I have a history of gastric reflux. I have a history of hyperlipidemia.",
                           last_slot="pmh", question="Do you have any medical conditions?")
    assert "indigestion" not in h["ros"]["positives"]
    assert any("gastric reflux" in x for x in h["pmh"]) and any("hyperlipidemia" in x for x in h["pmh"])
    h2, _, _ = extract_turn(empty_history(), {}, "I have a 3-week history of tiredness, mild fever and abdominal pain.",
                            is_first=True)
    assert "abdominal_pain" in h2["ros"]["positives"] and h2["hpi"].get("duration") == "3-week"
    # the patient said "chills", not "fever": the summary quotes them
    h3, p3, _ = extract_turn(empty_history(), {}, "My wrist hurts and I've had chills.", is_first=True)
    state = {"history": h3, "profile": p3, "triage": {"level": "routine", "red_flags": []}, "question_log": []}
    text = build_summary(state)["text"]
    ros_line = next(ln for ln in text.splitlines() if ln.startswith("ROS:"))
    assert "chills" in ros_line and "fever" not in ros_line


def test_a_bare_no_to_a_multi_part_question_answers_every_part():
    from chatdoc.dialogue.extract import extract_turn, is_filled
    from chatdoc.dialogue.state import empty_history

    q = "Are you taking any medicines, including ones from the pharmacy, and are you allergic to any medicines?"
    h, p, _ = extract_turn(empty_history(), {}, "No.", last_slot="medications", question=q, covers=("allergies",))
    assert {"medications", "allergies"} <= set(h["denied"])
    h, p, _ = extract_turn(empty_history(), {}, "No.", last_slot="medications", question=q)
    assert "allergies" not in h["denied"]  # without covers only the asked slot is answered
    h, p, _ = extract_turn(empty_history(), {}, "Not that I know of.", last_slot="social.smoking",
                           question="Do you smoke, drink alcohol or use any recreational drugs?",
                           covers=("social.alcohol", "social.drugs"))
    assert not is_filled("social.alcohol", h, p) or "social.alcohol" in h["unknown"]
    # the closing "anything else?" question: its answer joins the associated symptoms and fills the slot
    h, p, _ = extract_turn(empty_history(), {}, "My left wrist hurts.", is_first=True)
    assert not is_filled("review", h, p)
    h, p, _ = extract_turn(h, p, "I've been waking up sweaty at night. My fingernails have gone a funny shape.",
                           last_slot="review", question="Is there anything else you've noticed, even if it seems unrelated?")
    assert is_filled("review", h, p)
    assert "night sweats" in h["hpi"]["associated"]
    assert any("fingernails" in x for x in h["hpi"]["associated"])  # words no rule knows are kept too
