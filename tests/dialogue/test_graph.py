"""The consultation graph on an in-memory checkpointer (no Redis, no model): the turn path, what is kept in the
checkpoint, per-run options through the run context, streaming, and one triage / one NegEx per turn."""

from __future__ import annotations

import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from chatdoc.dialogue.context import RunContext
from chatdoc.dialogue.graph import build_graph
from chatdoc.dialogue.state import new_state
from chatdoc.llm import GenerationResult

KEPT = {"session_id", "persona", "adapter", "phase", "messages", "profile", "history", "triage", "question_log",
        "last_slot", "privacy", "crisis_pending", "crisis_acknowledged", "escalation_shown", "flagged", "advice_given",
        "reply", "summary", "turn"}


class Consultation:
    """One consultation on its own thread of a graph (patient text given already redacted)."""

    def __init__(self, graph=None, ctx: RunContext | None = None, persona: str = "gp"):
        self.graph = graph or build_graph(InMemorySaver())
        self.ctx = ctx or RunContext()
        self.cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
        self.greeting = self.graph.invoke(new_state("t", persona, None, {}), self.cfg, context=self.ctx,
                                          durability="exit")

    def say(self, text: str, ctx: RunContext | None = None) -> dict:
        return self.graph.invoke(Command(resume={"text": text}), self.cfg, context=ctx or self.ctx, durability="exit")

    def end(self) -> dict:
        return self.graph.invoke(Command(resume={"action": "end"}), self.cfg, context=self.ctx, durability="exit")

    def saved(self) -> dict:
        return dict(self.graph.get_state(self.cfg).values)


def test_turn_path_keeps_only_the_record_and_no_scratch():
    c = Consultation()
    assert c.greeting["reply"]["kind"] == "greeting" and c.greeting["phase"] == "history"
    c.say("I've had a throbbing headache for 3 days")
    c.say("no")
    st = c.saved()
    assert set(st) <= KEPT, set(st) - KEPT  # no pending / action / draft / request_kind / wants_finish / timings
    assert st["turn"] is None
    roles = [m["role"] for m in st["messages"]]
    assert roles == ["doctor", "patient", "doctor", "patient", "doctor"]  # the reducer appends, nothing twice
    log = st["question_log"]
    assert len(log) == 2 and log[0]["answered"] and not log[1]["answered"]
    assert st["reply"]["text"] == st["messages"][-1]["text"] == log[-1]["text"]
    out = c.end()
    assert out["phase"] == "closed" and out["summary"]["structured"]["chief_complaint"]
    assert out["reply"]["text"].endswith("Take care.")


def test_emergency_streams_banner_first_then_the_reply_part_by_part():
    c = Consultation()
    c.say("I have a headache")
    chunks = list(c.graph.stream(Command(resume={"text": "It's the worst headache of my life and came on suddenly"}),
                                 c.cfg, context=c.ctx, stream_mode="custom", durability="exit"))
    assert list(chunks[0]) == ["banner"] and "999" in chunks[0]["banner"]
    st = c.saved()
    assert "".join(ch["token"] for ch in chunks[1:]) == st["reply"]["text"]
    kinds = [p["kind"] for p in st["reply"]["parts"]]
    assert kinds == ["emergency", "question"]  # the instruction, then the history goes on while help comes
    assert st["question_log"][-1]["text"] == st["reply"]["parts"][-1]["text"]
    assert st["phase"] == "escalated" and st["flagged"] and st["triage"]["level"] == "emergency"
    assert st["messages"][-1]["text"].startswith(chunks[0]["banner"])
    flag = st["triage"]["red_flags"][0]
    assert set(flag) == {"id", "title", "level", "evidence"}  # the domain RedFlag
    assert flag["title"].lower() in st["reply"]["banner"]


def test_crisis_needs_an_acknowledgement_then_questions_resume():
    c = Consultation()
    c.say("I've been feeling really low for weeks")
    asked = len(c.saved()["question_log"])
    r = c.say("I want to end my life")
    assert r["crisis_pending"] and r["reply"]["kind"] == "crisis" and r["reply"]["banner"]
    r = c.say("what about my sleep")
    assert r["crisis_pending"] and len(r["question_log"]) == asked
    r = c.say("ok, I'm safe, I'll call them")
    assert not r["crisis_pending"] and r["crisis_acknowledged"] and len(r["question_log"]) == asked + 1


def test_one_analysis_and_one_triage_per_turn(monkeypatch):
    """Each patient turn is analysed once (earlier turns come from the analysis cache) and triaged once; the
    history reads the same findings."""
    from chatdoc.clinical import analyse as analyse_mod
    from chatdoc.dialogue import graph as graph_mod

    calls, analysed = [], []
    real, real_analyse = graph_mod.assess_findings, analyse_mod._analyse
    monkeypatch.setattr(graph_mod, "assess_findings", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(analyse_mod, "_analyse", lambda text, *a, **k: analysed.append(text) or real_analyse(text, *a, **k))
    analyse_mod._CACHE.clear()
    c = Consultation()
    texts = ("My neck isn't stiff but I have a bad headache", "no fever", "I can't breathe properly")
    for text in texts:
        before = len(calls)
        c.say(text)
        assert len(calls) - before == 1
    assert all(analysed.count(t) == 1 for t in texts), analysed


class FakeBackend:
    """A stand-in model: records every request and answers with ``text`` (None: a question on the asked topic)."""

    def __init__(self, text: str | None = None):
        self.text = text
        self.requests = []
        self.answers: list[str] = []

    def build_prompt(self, system, turns, max_new_tokens=None) -> str:
        return system

    def generate(self, request) -> GenerationResult:
        self.requests.append(request)
        topic = request.prompt.rsplit(" about their ", 1)[-1].rstrip(".")
        text = self.text or f"Could you tell me about {topic}?"
        self.answers.append(text)
        return GenerationResult(text=text, prompt_tokens=1, new_tokens=5, ttft_s=0.0, total_s=0.0,
                                stopped_by="stop", adapter=request.adapter)


@pytest.mark.parametrize("wording, backend", [(False, "x"), (True, None)])
def test_no_model_wording_without_the_option_and_a_backend(wording, backend):
    fake = FakeBackend("When did the headache start?")
    c = Consultation(ctx=RunContext(model_wording=wording, backend=fake if backend else None))
    c.say("I've had a headache for 2 days")
    assert not fake.requests and c.saved()["question_log"][-1]["source"] == "template"


def test_model_wording_is_per_run_and_guarded():
    graph = build_graph(InMemorySaver())
    good = FakeBackend()
    on = RunContext(model_wording=True, backend=good)
    a = Consultation(graph, on)
    b = Consultation(graph)  # same graph, same process, template run
    a.say("I've had a headache for 2 days")
    b.say("I've had a headache for 2 days")
    asked = [r for r in good.requests if "one short question" in r.prompt]
    assert len(asked) == 1, "the model was asked once for the question"
    qa, qb = a.saved()["question_log"][-1], b.saved()["question_log"][-1]
    assert qa["source"] == "model" and qa["text"] == good.answers[good.requests.index(asked[0])]
    assert a.saved()["reply"]["text"].endswith(qa["text"])
    assert qb["source"] == "template" and qb["slot"] == qa["slot"] and qb["text"] != qa["text"]
    # a wording the checks refuse is replaced by the template, and why is recorded
    bad = FakeBackend("You have a migraine. Take 400mg ibuprofen three times a day.")
    c = Consultation(graph, RunContext(model_wording=True, backend=bad))
    r = c.say("I've had a headache for 2 days")
    assert len([q for q in bad.requests if "one short question" in q.prompt]) == 2  # regenerated once, then the template
    assert r["reply"]["source"] == "template" and r["reply"]["guard_reasons"]
    assert r["reply"]["text"].endswith(r["question_log"][-1]["text"])
    assert not any(p["source"] == "model" for p in r["reply"]["parts"])  # the acknowledgement was refused too
