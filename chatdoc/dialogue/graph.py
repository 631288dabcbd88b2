"""The consultation graph: LangGraph wiring (the clinical work lives in the sibling modules).

    START -> greet -> intake ──(policy's action)──> ask | advise | escalate | refuse ──> intake (next turn)
                        ^  │                      └──> close (summary) ──> END
                        │  └ interrupt(): waits for the patient
                        └───────────────────────────────────────────────┘

A patient turn is two nodes. ``intake`` takes the resume value, triages the whole record once, updates
the history and asks the policy once what to do (with the slot to ask next); the reply node it routes to
words the reply, streams it and appends it. See README.md in this package for the turn step by step.

* Patient turns enter through ``interrupt()`` in ``intake`` and are resumed with
  ``Command(resume={"text": ..., "privacy": ...})`` (or ``{"action": "end"}``) on the checkpointer the caller
  gives :func:`build_graph` (thread_id = session id). The checkpoint IS the consultation.
* PRIVACY: LangGraph keeps resume values, so the caller (``chatdoc.service``) redacts the patient text with
  the session's ``PlaceholderState`` BEFORE it is passed, and passes the new placeholder state as ``privacy``.
  The graph stores that text and state as given; it never sees raw identifiers.
* Per-run options (model wording, the backend) come from ``context=RunContext(...)``, never from settings.
* Durability: callers invoke with ``durability="exit"``: one checkpoint per turn, written when the graph
  stops at the next ``interrupt()``; per-turn scratch (``turn``) is cleared by then. A turn killed half-way
  leaves the previous checkpoint (still waiting for that patient turn) and can simply be sent again.
* Streaming: the reply node emits ``{"banner": ...}`` then ``{"token": <the whole reply>}`` through LangGraph's
  custom stream (``stream_mode="custom"``); the reply is a template or an already-guarded model wording, so
  it is finished before it is sent.
"""

from __future__ import annotations

import operator
import re
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from chatdoc.clinical.analyse import analyse_record
from chatdoc.clinical.findings import Findings
from chatdoc.config import get_settings
from chatdoc.dialogue.advice import advice_text
from chatdoc.dialogue.context import RunContext
from chatdoc.dialogue.extract import NEG_ANSWER, extract_turn, is_filled, wants_finish
from chatdoc.dialogue.personas import get_persona
from chatdoc.dialogue.policy import next_question
from chatdoc.dialogue.questions import choose_set, plan
from chatdoc.clinical.analyse import CORRECTION_CUE
from chatdoc.dialogue.answers import answer as answer_question
from chatdoc.dialogue.answers import classify as classify_question
from chatdoc.dialogue.respond import Budget, acknowledge, grounded_generate, word_question
from chatdoc.dialogue.state import (ConsultationState, QuestionLog, Reply, ReplyPart, Triage, TurnPlan, log_upsert,
                                    patient_turns)
from chatdoc.dialogue.summary import build_summary
from chatdoc.texts import text as wording
from chatdoc.safety import (
    assess_findings,
    classify_request,
    crisis_message,
    emergency_banner,
    is_acknowledgement,
    red_flags,
    refusal_message,
)

ACTIONS = ("ask", "advise", "escalate", "refuse", "close")
Update = dict[str, Any]


def _ctx(runtime: Runtime[RunContext]) -> RunContext:
    return runtime.context if runtime.context is not None else RunContext()


def _template(text: str, kind: str) -> Reply:
    return Reply(text=text, kind=kind, source="template", slot=None, guard_reasons=[],
                 parts=[ReplyPart(kind=kind, text=text, source="template", reasons=[])])


class _Out:
    """The reply as it is produced: the banner first (emergency level or a crisis pending), then each part is
    streamed as soon as it has passed its checks (LangGraph's custom stream: ``{"banner"}``, ``{"token"}``)."""

    def __init__(self, state: ConsultationState, runtime: Runtime[RunContext]):
        self.runtime, self.parts, self.banner, self.sent = runtime, [], None, 0
        tri = state.get("triage") or {}
        if tri.get("level") == "emergency" or state.get("crisis_pending"):
            flags = tri.get("red_flags") or []
            self.banner = emergency_banner(crisis=bool(tri.get("crisis")), title=flags[0]["title"] if flags else None,
                                           locale=_ctx(runtime).locale)
            runtime.stream_writer({"banner": self.banner})

    def add(self, part: ReplyPart) -> None:
        """Stream ``part``; one with no text (e.g. a refused model acknowledgement with nothing to replace it) is
        only kept in the record, for the evaluation of the model's parts."""
        if (part.get("text") or "").strip():
            self.runtime.stream_writer({"token": (" " if self.sent else "") + part["text"].strip()})
            self.sent += 1
        self.parts.append(part)


def _opening(state: ConsultationState, runtime: Runtime[RunContext], budget: Budget, out: _Out, *, ack: bool = True
             ) -> None:
    """The parts before the turn's main part: an acknowledgement of what the patient said (a correction always
    gets one) and an answer to each of their questions (at most two), consistent with the current triage level."""
    ctx, turn = _ctx(runtime), state.get("turn") or {}
    messages = state.get("messages", [])
    last = next((m["text"] for m in reversed(messages) if m["role"] == "patient"), "")
    persona = get_persona(state.get("persona"))
    recent = [m["text"] for m in messages if m["role"] == "doctor"][-3:]
    if last and ctx.acknowledge and ack and (turn.get("correction") or turn.get("substantive")):
        w = acknowledge(last, persona, messages, correction=bool(turn.get("correction")), adapter=state.get("adapter"),
                        use_model=ctx.wording_by_model, backend=ctx.backend, recent_outputs=recent, budget=budget)
        out.add(ReplyPart(kind="ack", text=w.text, source=w.source, reasons=w.reasons))  # empty = none needed
    if ctx.answer_questions:
        level = (state.get("triage") or {}).get("level")
        for q in (turn.get("questions") or [])[:2]:
            a = answer_question(q, level=level, locale=ctx.locale, grounded=_grounded(state, runtime, budget))
            out.add(ReplyPart(kind="answer", text=a.text, source=a.source, reasons=a.reasons, question=q,
                                qclass=a.qclass, handling=a.handling, url=a.url,
                                passage_id=a.passage_id))


def _grounded(state: ConsultationState, runtime: Runtime[RunContext], budget: Budget):
    """``question -> GroundedAnswer`` from MedQuAD (the model words it when it may), or None when off."""
    ctx = _ctx(runtime)
    if not ctx.knowledge_answers:
        return None
    from chatdoc.knowledge import grounded_answer

    gen = (grounded_generate(ctx.backend, get_persona(state.get("persona")), adapter=state.get("adapter"), budget=budget)
           if ctx.wording_by_model else None)
    return lambda q: grounded_answer(q, generate=gen)


def _reply(kind: str, parts: list[ReplyPart], slot: str | None = None) -> Reply:
    """One reply from its parts (each already checked); the reply's source is "model" if any part is the model's."""
    text = " ".join(p["text"].strip() for p in parts if p.get("text"))
    reasons = [r for p in parts for r in p.get("reasons") or []]
    source = "model" if any(p.get("source") == "model" for p in parts) else "template"
    return Reply(text=text, kind=kind, source=source, slot=slot, guard_reasons=reasons, parts=parts)


# ---------------------------------------------------------------------------------------------- the patient's turn
def intake(state: ConsultationState) -> Update:
    """Wait for the patient; then record the turn, triage it, extract it and decide the action (all once)."""
    value = interrupt({"await": "patient", "session_id": state.get("session_id")})
    if not isinstance(value, dict):
        value = {"text": str(value)}
    if value.get("action") == "end":
        return {"turn": TurnPlan(action="close")}
    text = str(value.get("text", ""))  # redacted by the caller (see the module docstring)
    update = {"messages": [{"role": "patient", "text": text}], "privacy": value.get("privacy") or state.get("privacy")}
    record = _analyse(state, text)
    update |= _triage(state, text, record)
    update |= _extract(state, text, record[-1])
    request_kind = classify_request(text).kind
    now = _applied(state, update)
    action, slot = _decide(now, text, request_kind, wants_finish(text))
    turn = record[-1]
    clarify = action == "ask" and _unclear(now, text)
    if clarify:
        slot = now.get("last_slot")
    last_doctor = next((m["text"] for m in reversed(state.get("messages") or []) if m["role"] == "doctor"), "")
    questions = [q for q in turn.questions if _real_question(q) and not _echo_question(q, last_doctor)]
    update["turn"] = TurnPlan(action=action, slot=slot, request_kind=request_kind, questions=questions,
                              correction=turn.correction and _corrects(text, turn.questions), clarify=clarify,
                              substantive=_substantive(text, questions) and not wants_finish(text))
    return update


def _echo_question(q: str, last_doctor: str) -> bool:
    """The patient checking or repeating a term before answering ("pins and needles? kind of ..."): a fragment
    of at most four words without a question word, or of five whose words are all in the assistant's last message."""
    words = re.findall(r"[a-z']+", q.lower())
    if not words or len(words) > 5 or _QWORD.match(q.strip().lower()):
        return False
    said = set(re.findall(r"[a-z']+", last_doctor.lower()))
    return len(words) <= 4 or all(w in said or len(w) <= 2 for w in words)


_QWORD = re.compile(r"^\W*(?:what|how|why|when|where|who|which|can|could|should|shall|would|will|is|are|am|do|does|did|"
                    r"have|has|may|might)\b")


def _real_question(q: str) -> bool:
    """A question to answer: a recognised class, or three words or more that are not only a hedge ("sort of?")."""
    if classify_question(q) != "other":
        return True
    words = re.findall(r"[A-Za-z']+", q)
    return len(words) >= 3 and not (_HEDGE.search(q) and len(words) <= 4)


def _corrects(text: str, questions: list[str]) -> bool:
    """The correction cue is in what the patient states, not in one of their questions ("what actually is ...?")."""
    return bool(CORRECTION_CUE.search(_without(text, questions)))


_HEDGE = re.compile(r"\b(?:sort of|kind of|kinda|sorta|maybe|i guess|i suppose|perhaps|possibly|hard to (?:say|tell|see)|"
                    r"it depends|depends|not (?:really )?sure|dunno|hmm+|erm+|um+|ish|i think so|not really|"
                    r"sometimes)\b", re.I)


_UNSURE = re.compile(r"\b(?:not (?:really )?sure|hard to (?:say|tell|see)|i dunno|dunno|i think so\?|no idea)\b", re.I)


def _unclear(state: ConsultationState, text: str) -> bool:
    """The answer to the last question was a short hedge the history could not use: ask it once more (once)."""
    slot = state.get("last_slot")
    if not slot or len(text.split()) > 20 or not _HEDGE.search(text):
        return False
    if is_filled(slot, state["history"], state.get("profile") or {}) and len(_HEDGE.findall(text)) < 2 \
            and not _UNSURE.search(text):
        return False  # one "maybe" inside a usable answer is an answer
    if slot in (state["history"].get("unknown") or []) and len(_HEDGE.findall(text)) < 2:
        return False  # "I don't know" is an answer; "not sure, maybe sometimes" is not clear
    return sum(1 for q in state.get("question_log") or [] if q["slot"] == slot) < 2


def _substantive(text: str, questions: list[str]) -> bool:
    """Something besides the questions (worth acknowledging)."""
    return len(re.findall(r"[A-Za-z]{2,}", _without(text, questions))) >= 1


def _without(text: str, questions: list[str]) -> str:
    """The turn's text with its question sentences taken out."""
    for q in questions:
        text = text.replace(q, " ")
    return text


def _analyse(state: ConsultationState, text: str) -> list[Findings]:
    """The typed findings of every patient turn (each turn is analysed once: earlier turns come from the cache)."""
    speaker = "carer" if get_persona(state.get("persona")).audience == "parent" else None
    return analyse_record([*patient_turns(state), text], speaker=speaker)


def _triage(state: ConsultationState, text: str, record: list[Findings]) -> Update:
    """The whole record's findings against the red-flag rules (once per turn), and the crisis hand-shake."""
    prof = state.get("profile") or {}
    res = assess_findings(record, {k: v for k, v in prof.items() if v is not None})
    pending, acknowledged = bool(state.get("crisis_pending")), bool(state.get("crisis_acknowledged"))
    if res.latest_crisis:  # a new crisis statement: the crisis message again, until acknowledged
        pending, acknowledged = True, False
    elif pending and is_acknowledgement(text, crisis=False):
        pending, acknowledged = False, True
    elif res.crisis and not acknowledged:
        pending = True
    escalated = res.level == "emergency" or res.crisis
    return {
        "triage": Triage(level=res.level, red_flags=red_flags(res), crisis=res.crisis, crisis_kind=res.crisis_kind),
        "crisis_pending": pending, "crisis_acknowledged": acknowledged,
        "flagged": bool(state.get("flagged")) or escalated,
        "phase": "escalated" if escalated else state.get("phase", "history"),
    }


def _extract(state: ConsultationState, text: str, findings: Findings | None = None) -> Update:
    """The turn into the structured history (as the answer to the last question, when there was one)."""
    history = state["history"]
    last = (state.get("question_log") or [None])[-1]
    last_slot = state.get("last_slot")
    question = last["text"] if last and last["slot"] == last_slot else None
    item = next((it for it in plan(history.get("complaint_set", "general")) if it.slot == last_slot), None)
    hist, prof, _filled = extract_turn(history, state.get("profile") or {}, text, last_slot=last_slot,
                                       question=question, is_first=history.get("chief_complaint") is None,
                                       covers=tuple(item.covers) if item and question else (), findings=findings)
    if hist.get("complaint_set", "general") == "general" and hist.get("chief_complaint"):
        persona = get_persona(state.get("persona"))
        # the complaint itself (not negated mentions such as "no fever") picks the question set
        hist["complaint_set"] = choose_set(" ".join([hist["chief_complaint"], *hist["hpi"].get("associated", [])]),
                                           persona.uses)
    update: Update = {"history": hist, "profile": prof}
    if last and last_slot and last["slot"] == last_slot:
        update["question_log"] = [QuestionLog(**{**last, "answered": is_filled(last_slot, hist, prof)})]
    return update


def _decide(state: ConsultationState, text: str, request_kind: str, finish: bool) -> tuple[str, str | None]:
    """The policy, once: (action, slot to ask; None = the chief complaint)."""
    if state.get("crisis_pending"):
        return "escalate", None
    if request_kind != "ok":
        return "refuse", None
    if state["triage"]["level"] == "emergency" and not state.get("escalation_shown"):
        # the emergency instruction, and the next history question for the team receiving the patient (the
        # turn is not spent on the instruction alone)
        return "escalate", _next_slot(state, finish)
    if state.get("phase") == "advice":
        return ("close" if finish or _is_no(text) else "advise"), None
    if finish and state.get("advice_given"):
        return "close", None
    if state["history"].get("chief_complaint") is None:
        return "ask", None
    slot = _next_slot(state, finish)
    return ("ask", slot) if slot is not None else ("advise", None)


def _next_slot(state: ConsultationState, finish: bool) -> str | None:
    """The question policy's next slot (None: nothing left to ask)."""
    if state["history"].get("chief_complaint") is None:
        return None
    s = get_settings().dialogue
    d = next_question(state, s.max_questions, s.coverage_target, get_persona(state.get("persona")).max_questions,
                      wants_finish=finish)
    return d.item.slot if d.item is not None else None


def _is_no(text: str) -> bool:
    return bool(NEG_ANSWER.search(text.strip().lower())) and len(text.split()) <= 6


def _applied(state: ConsultationState, update: Update) -> ConsultationState:
    """``state`` as it will be once LangGraph applies ``update`` (with the list channels' reducers)."""
    now: dict[str, Any] = {**state, **update}
    for key, reducer in (("messages", operator.add), ("question_log", log_upsert)):
        if key in update:
            now[key] = reducer(state.get(key) or [], update[key])
    return now  # type: ignore[return-value]


def route(state: ConsultationState) -> str:
    return (state.get("turn") or {}).get("action", "close")


# ---------------------------------------------------------------------------------------------- replies
def greet(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    greeting = get_persona(state.get("persona")).greeting.strip()
    return _deliver(state, runtime, _template(greeting, "greeting"), {"phase": "history"})


def ask(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    persona = get_persona(state.get("persona"))
    turn = state.get("turn") or {}
    slot = turn.get("slot")
    item = next((it for it in plan(state["history"]["complaint_set"]) if it.slot == slot), None)
    ctx = _ctx(runtime)
    budget = Budget(ctx.model_budget_s)
    out = _Out(state, runtime)
    _opening(state, runtime, budget, out, ack=not turn.get("clarify"))
    if item is None:  # the chief complaint first
        key = "dialogue.ask_complaint.parent" if persona.audience == "parent" else "dialogue.ask_complaint.self"
        out.add(ReplyPart(kind="question", text=wording(key), source="template", reasons=[]))
        return _deliver(state, runtime, _reply("question", out.parts), {"last_slot": None}, out)
    messages = state.get("messages", [])
    recent = [m["text"] for m in messages if m["role"] == "doctor"][-3:]
    w = word_question(item, persona, messages, adapter=state.get("adapter"), use_model=ctx.wording_by_model,
                      backend=ctx.backend, red_flag=state["triage"]["level"] in ("emergency", "urgent"),
                      recent_outputs=recent, budget=budget)
    if turn.get("clarify"):
        out.add(ReplyPart(kind="ack", text=wording("ack.clarify"), source="template", reasons=[]))
    out.add(ReplyPart(kind="question", text=w.text, source=w.source, reasons=w.reasons))
    log = QuestionLog(slot=item.slot, turn=len(patient_turns(state)), text=w.text, source=w.source, answered=False)
    return _deliver(state, runtime, _reply("question", out.parts, item.slot),
                    {"question_log": [log], "last_slot": item.slot}, out)


def advise(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    budget, out = Budget(_ctx(runtime).model_budget_s), _Out(state, runtime)
    if state.get("advice_given") and state.get("phase") == "advice":
        _opening(state, runtime, budget, out, ack=False)
        out.add(ReplyPart(kind="ack", text=wording("dialogue.added_to_notes"), source="template", reasons=[]))
        return _deliver(state, runtime, _reply("ack", out.parts), {"last_slot": None}, out)
    _opening(state, runtime, budget, out)
    text = f"{advice_text(state, _ctx(runtime).locale)} {wording('dialogue.anything_else')}"
    out.add(ReplyPart(kind="advice", text=text, source="template", reasons=[]))
    phase = "escalated" if state.get("phase") == "escalated" else "advice"
    return _deliver(state, runtime, _reply("advice", out.parts), {"advice_given": True, "phase": phase, "last_slot": None},
                    out)


def escalate(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    tri, out = state["triage"], _Out(state, runtime)
    if state.get("crisis_pending"):
        draft = _template(crisis_message(_ctx(runtime).locale, tri.get("crisis_kind")), "crisis")
        out.add(draft["parts"][0])
    else:
        out.add(ReplyPart(kind="emergency", text=wording("dialogue.emergency_flagged"), source="template", reasons=[]))
        # the patient's questions still get an answer, at the emergency level
        budget = Budget(_ctx(runtime).model_budget_s)
        _opening(state, runtime, budget, out, ack=False)
        slot = (state.get("turn") or {}).get("slot")
        item = next((it for it in plan(state["history"]["complaint_set"]) if it.slot == slot), None) if slot else None
        if item is not None:  # the history goes on while help is on its way
            persona = get_persona(state.get("persona"))
            w = word_question(item, persona, state.get("messages", []), adapter=state.get("adapter"),
                              use_model=False, backend=None, red_flag=True, recent_outputs=[])
            out.add(ReplyPart(kind="question", text=w.text, source=w.source, reasons=w.reasons))
            log = QuestionLog(slot=item.slot, turn=len(patient_turns(state)), text=w.text, source=w.source,
                              answered=False)
            return _deliver(state, runtime, _reply("emergency", out.parts, item.slot), {
                "escalation_shown": True, "phase": "escalated", "last_slot": item.slot, "question_log": [log]}, out)
        draft = _reply("emergency", out.parts)
    return _deliver(state, runtime, draft, {
        "escalation_shown": tri["level"] == "emergency" or bool(state.get("escalation_shown")),
        "phase": "escalated", "last_slot": None}, out)


def refuse(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    kind = (state.get("turn") or {}).get("request_kind", "non_medical")
    return _deliver(state, runtime, _template(refusal_message(kind), "refusal"), {"last_slot": None})


def close(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    """The closing reply (the advice, if it was not given yet) and the summary built from the record."""
    text = wording("dialogue.close")
    if not state.get("advice_given") and state.get("messages"):
        text = advice_text(state, _ctx(runtime).locale)
    update: Update = {"phase": "closed", "advice_given": True, "last_slot": None}
    stream = _Out(state, runtime)
    if state.get("turn"):
        _opening(state, runtime, Budget(_ctx(runtime).model_budget_s), stream, ack=False)
    stream.add(ReplyPart(kind="close", text=f"{text} {wording('dialogue.take_care')}", source="template", reasons=[]))
    out = _deliver(state, runtime, _reply("close", stream.parts), update, stream)
    out["summary"] = build_summary(_applied(state, update))
    return out


def _deliver(state: ConsultationState, runtime: Runtime[RunContext], draft: Reply, update: Update,
             out: _Out | None = None) -> Update:
    """Append the reply to the transcript and clear the turn's scratch. ``out``: the reply's stream (its banner and
    parts already sent); without one, the banner and the reply are streamed here.

    Every part of ``draft`` is a template or a model wording that already passed its checks (``respond``)."""
    if out is None:
        out = _Out(state, runtime)
        for part in draft.get("parts") or [ReplyPart(kind=draft.get("kind", ""), text=draft["text"])]:
            out.add(part)
    banner = out.banner
    shown = f"{banner}\n\n{draft['text']}" if banner else draft["text"]
    return {**update, "messages": [{"role": "doctor", "text": shown}], "reply": Reply(**draft, banner=banner),
            "turn": None}


# ---------------------------------------------------------------------------------------------- wiring
def build_graph(checkpointer: Any):
    """The compiled consultation graph on ``checkpointer``; run it with ``context=RunContext(...)``."""
    g = StateGraph(ConsultationState, context_schema=RunContext)
    g.add_node("greet", greet)
    g.add_node("intake", intake)
    for name, node in zip(ACTIONS, (ask, advise, escalate, refuse, close), strict=True):
        g.add_node(name, node)
    g.add_edge(START, "greet")
    g.add_edge("greet", "intake")
    g.add_conditional_edges("intake", route, {a: a for a in ACTIONS})
    for name in ("ask", "advise", "escalate", "refuse"):
        g.add_edge(name, "intake")
    g.add_edge("close", END)
    return g.compile(checkpointer=checkpointer)
