"""A turn's reply is composed from checked parts: acknowledgement, answers to the patient's questions, the next
question; corrections are acknowledged and applied; unclear answers are asked again; parts stream as they come.
Real graph, Redis, redaction and triage (template wording: the model's parts are tested in tests/llm)."""

from __future__ import annotations


def _start(svc, persona=None):
    sid = svc.start_consultation(persona).session_id
    svc.record_consent(sid)
    return sid


def test_questions_are_answered_before_the_next_question(svc):
    sid = _start(svc)
    svc.send_message(sid, "I've had a sore throat for three days")
    r = svc.send_message(sid, "Should I be worried about it? Also how many ibuprofen can I take?")
    kinds = [p["kind"] for p in r.parts]
    assert kinds[:2] == ["answer", "answer"] and kinds[-1] == "question", kinds
    worry, dose = r.parts[0], r.parts[1]
    assert worry["qclass"] == "worry" and worry["handling"] == "answered"
    assert dose["qclass"] == "dose" and "can't advise on doses" in dose["text"]
    assert r.reply.count("?") == 1 and r.reply.endswith("?")
    summary = svc.end_consultation(sid)
    assert "worried" in summary.text.lower()  # the question stays among the patient's concerns


def test_an_answer_never_says_less_than_an_emergency(svc):
    sid = _start(svc)
    r = svc.send_message(sid, "crushing chest pain going into my left arm for 20 minutes, I'm sweating")
    assert r.triage_level == "emergency"
    r = svc.send_message(sid, "can I just take an aspirin and wait and see if it passes?")
    answers = [p for p in r.parts if p["kind"] == "answer"]
    assert answers and all("999" in p["text"] for p in answers)
    assert r.banner and "999" in r.banner


def test_correction_is_acknowledged_and_applied(svc):
    sid = _start(svc)
    svc.send_message(sid, "I've had a cough for two weeks")
    r = svc.send_message(sid, "sorry, I meant three weeks not two")
    ack = r.parts[0]
    assert ack["kind"] == "ack" and "three weeks" in ack["text"] and "correct" in ack["text"].lower()
    view = svc.get_state(sid)
    assert "three weeks" in (view.history["hpi"].get("duration") or "")


def test_unclear_answer_gets_one_clarifying_question(svc):
    sid = _start(svc)
    r1 = svc.send_message(sid, "I keep getting headaches")
    r2 = svc.send_message(sid, "hmm, maybe?")
    assert any("sure I have this right" in p["text"] for p in r2.parts)
    assert r2.parts[-1]["text"] == r1.parts[-1]["text"]  # the same question once more
    r3 = svc.send_message(sid, "hmm, maybe?")
    assert r3.parts[-1]["text"] != r1.parts[-1]["text"]  # only once


def test_reply_parts_stream_in_order_and_add_up_to_the_reply(svc):
    sid = _start(svc)
    svc.send_message(sid, "My ankle is swollen since I twisted it yesterday")
    events = list(svc.stream_message(sid, "It's really sore. When will someone call me back?"))
    tokens = [e.text for e in events if e.kind == "token"]
    done = events[-1]
    assert done.kind == "done" and len(tokens) == len([p for p in done.reply.parts if p["text"]]) >= 2
    assert "".join(tokens) == done.reply.reply


def test_a_term_repeated_before_the_answer_is_not_a_question_to_answer(svc):
    sid = _start(svc)
    svc.send_message(sid, "I've had a rash on my arm for a week")
    r = svc.send_message(sid, "itchy? yes, a bit, mostly at night")
    assert not [p for p in r.parts if p["kind"] == "answer"], r.reply


def test_a_hedged_answer_is_clarified_even_when_something_was_recorded(svc):
    sid = _start(svc)
    r1 = svc.send_message(sid, "I've had a cough for two weeks")
    r2 = svc.send_message(sid, "erm, not sure really, maybe sometimes")
    assert any("sure I have this right" in p["text"] for p in r2.parts), r2.reply
    assert r2.parts[-1]["text"] == r1.parts[-1]["text"]
