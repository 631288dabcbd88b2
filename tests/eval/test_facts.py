"""Fact matcher: positives, negatives, negation polarity, thresholds, hallucination counting."""

from chatdoc.tools.eval.facts import (
    Fact,
    coverage,
    key_terms,
    match_fact,
    needed,
    questions_in,
    repeated_questions,
    summary_claims,
    unsupported_claims,
)

SUMMARY = """Chief complaint: double vision for 1 month.
HPI: 35-year-old woman with double vision, worse after activity. Trouble climbing stairs and weak arms when brushing hair.
PMH: none reported.
Social history: does not smoke; drinks wine occasionally; graphic designer.
ROS positives: fatigue. Negatives: chest pain, palpitations, no shortness of breath.
Triage: routine
"""


def test_threshold_rule():
    assert [needed(n) for n in range(1, 6)] == [1, 2, 2, 3, 3]


def test_positive_fact_matches_with_stemming_and_synonyms():
    assert match_fact(Fact("Difficulty climbing stairs", "symptom"), "Trouble climbing the stairs.").matched
    assert match_fact(Fact("Works as a graphic designer", "social"), SUMMARY).matched
    assert match_fact(Fact("drinks wine occasionally", "social"), "Alcohol: drinks socially.").matched
    assert match_fact(Fact("Shortness of breath", "symptom"), "Reports dyspnea on exertion.").matched


def test_unrelated_or_partial_fact_does_not_match():
    assert not match_fact(Fact("Weight loss", "symptom"), SUMMARY).matched
    # 1 of 3 key terms is below the 0.6 threshold
    assert not match_fact(Fact("Reduced strength in right upper limb", "symptom"), "Right knee pain.").matched


def test_negated_fact_needs_negated_mention():
    assert match_fact(Fact("chest pain", "ros_negative"), SUMMARY).matched
    assert match_fact(Fact("shortness of breath", "ros_negative"), SUMMARY).matched
    assert match_fact(Fact("Non-smoker", "social", negated=True), SUMMARY).matched
    assert match_fact(Fact("fever", "ros_negative"), "Denies fever, chills or weight loss.").matched
    # the same words stated positively do not cover a denial
    m = match_fact(Fact("chest pain", "ros_negative"), "Reports chest pain on exertion.")
    assert not m.matched and m.polarity_error


def test_positive_fact_stated_as_negative_is_not_covered():
    m = match_fact(Fact("Fatigue", "ros_positive"), "Denies fatigue or fever.")
    assert not m.matched and m.polarity_error
    assert match_fact(Fact("Fatigue", "ros_positive"), "No fever but reports fatigue.").matched
    assert match_fact(Fact("Fatigue", "ros_positive"), SUMMARY).matched


def test_negation_scope_does_not_cross_clauses():
    text = "No fever. Cough for a week."
    assert match_fact(Fact("cough", "symptom"), text).matched
    assert not match_fact(Fact("cough", "ros_negative"), text).matched


def test_key_terms_drop_generic_words_and_negation():
    assert key_terms("Patient denies any recent infections") == ["infect"]
    assert key_terms("No significant past medical history") == []


def test_coverage_per_kind():
    facts = [Fact("chest pain", "ros_negative"), Fact("weight loss", "ros_negative"), Fact("double vision", "symptom")]
    cov = coverage(facts, SUMMARY)
    assert cov["covered"] == 2 and cov["total"] == 3
    assert cov["per_kind"]["ros_negative"] == {"covered": 1, "total": 2}


def test_summary_claims_skip_meta_and_empty_sections():
    claims = summary_claims(SUMMARY)
    assert not any("routine" in c.lower() for c in claims)
    assert not any(c.lower().startswith("none") for c in claims)
    assert any("graphic designer" in c for c in claims)


def test_hallucination_counting():
    said = ["I'm a 35-year-old woman. I have double vision.", "It's worse after activity.",
            "I have trouble climbing stairs and weak arms when I brush my hair.", "I don't smoke, I drink wine occasionally.",
            "I'm a graphic designer.", "I feel tired a lot.", "No chest pain, no palpitations, no shortness of breath."]
    assert unsupported_claims(SUMMARY, said) == []
    extra = SUMMARY + "Medications: metformin 500 mg.\nFamily history: mother with breast cancer.\n"
    bad = unsupported_claims(extra, said)
    assert len(bad) == 2
    assert {b["claim"] for b in bad} == {"metformin 500 mg", "mother with breast cancer"}


def test_questions_and_repeats():
    msg = "Thanks for telling me. How long have you had the double vision? Do you have any chest pain?"
    assert questions_in(msg) == ["How long have you had the double vision?", "Do you have any chest pain?"]
    qs = ["Do you have any chest pain?", "Do you smoke?", "Any chest pain at all?", "Do you drink alcohol?"]
    assert repeated_questions(qs) == [("Do you have any chest pain?", "Any chest pain at all?")]


RENDERED = """CC: sore throat (age: 34)
HPI: duration: three days. associated symptoms: fever, rash
PMH: not recorded
Allergies: penicillin
SH: smoking: no; alcohol: occasionally; occupation: teacher
ROS: positives: fever; rash; pertinent negatives: neck stiffness; confusion; shortness of breath
Red flags: Rash [routine] ("rash")
Unanswered: cough; past medical history; smoking
"""


def test_rendered_summary_format_polarity():
    assert match_fact(Fact("Non-smoker", "social", negated=True), RENDERED).matched
    assert match_fact(Fact("drinks wine occasionally", "social"), RENDERED).matched
    assert match_fact(Fact("confusion", "ros_negative"), RENDERED).matched
    assert match_fact(Fact("shortness of breath", "ros_negative"), RENDERED).matched
    assert match_fact(Fact("rash", "symptom"), RENDERED).matched
    assert not match_fact(Fact("rash", "ros_negative"), RENDERED).matched
    # "Unanswered:" and "Red flags:" lines are not history
    assert not match_fact(Fact("cough", "ros_negative"), RENDERED).matched
    assert not match_fact(Fact("cough", "symptom"), RENDERED).matched


def test_denied_question_supports_negated_claims_only():
    said = ["I'm 34. I've had a sore throat and a fever for three days.", "Not that I know of.", "No."]
    asked = ["Is there any neck stiffness?", "Have you been confused?"]
    claims = {c: n for c, n in __import__("chatdoc.tools.eval.facts", fromlist=["x"]).summary_claims_polar(RENDERED)}
    assert claims["neck stiffness"] is True and claims["fever"] is False
    bad = {b["claim"] for b in unsupported_claims(RENDERED, said, denied_questions=asked)}
    assert "neck stiffness" not in bad and "confusion" not in bad
    assert {"rash", "penicillin", "teacher", "shortness of breath"} <= bad


def test_local_negation_inside_negative_list_and_abbreviation():
    text = "ROS: positives: fever; pertinent negatives: rash that does not fade under pressure; neck stiffness\nPMH: PCOS"
    assert match_fact(Fact("neck stiffness", "ros_negative"), text).matched
    assert match_fact(Fact("Polycystic ovarian syndrome (PCOS)", "pmh"), text).matched
    assert match_fact(Fact("fever", "ros_positive"), text).matched


def test_redaction_placeholders_are_not_claims():
    from chatdoc.tools.eval.facts import unsupported_claims

    summary = "SH: lives with <PERSON_1>; works as a teacher"
    said = ["I live with my husband Tom.", "I work as a teacher."]
    assert unsupported_claims(summary, said) == []
    assert unsupported_claims("SH: lives with <PERSON_1>; keeps racing pigeons", said)  # a real unsupported claim still counts
