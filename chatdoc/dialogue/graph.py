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
from chatdoc.dialogue.respond import word_question
from chatdoc.dialogue.state import ConsultationState, QuestionLog, Reply, Triage, TurnPlan, log_upsert, patient_turns
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
    return Reply(text=text, kind=kind, source="template", slot=None, guard_reasons=[])


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
    action, slot = _decide(_applied(state, update), text, request_kind, wants_finish(text))
    update["turn"] = TurnPlan(action=action, slot=slot, request_kind=request_kind)
    return update


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
        return "escalate", None
    if state.get("phase") == "advice":
        return ("close" if finish or _is_no(text) else "advise"), None
    if finish and state.get("advice_given"):
        return "close", None
    if state["history"].get("chief_complaint") is None:
        return "ask", None
    s = get_settings().dialogue
    d = next_question(state, s.max_questions, s.coverage_target, get_persona(state.get("persona")).max_questions,
                      wants_finish=finish)
    return ("ask", d.item.slot) if d.item is not None else ("advise", None)


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
    slot = (state.get("turn") or {}).get("slot")
    item = next((it for it in plan(state["history"]["complaint_set"]) if it.slot == slot), None)
    if item is None:  # the chief complaint first
        key = "dialogue.ask_complaint.parent" if persona.audience == "parent" else "dialogue.ask_complaint.self"
        return _deliver(state, runtime, _template(wording(key), "question"), {"last_slot": None})
    ctx = _ctx(runtime)
    messages = state.get("messages", [])
    recent = [m["text"] for m in messages if m["role"] == "doctor"][-3:]
    w = word_question(item, persona, messages, adapter=state.get("adapter"), use_model=ctx.wording_by_model,
                      backend=ctx.backend, red_flag=state["triage"]["level"] in ("emergency", "urgent"),
                      recent_outputs=recent)
    log = QuestionLog(slot=item.slot, turn=len(patient_turns(state)), text=w.text, source=w.source, answered=False)
    draft = Reply(text=w.text, kind="question", source=w.source, slot=item.slot, guard_reasons=w.reasons)
    return _deliver(state, runtime, draft, {"question_log": [log], "last_slot": item.slot})


def advise(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    if state.get("advice_given") and state.get("phase") == "advice":
        return _deliver(state, runtime, _template(wording("dialogue.added_to_notes"), "ack"), {"last_slot": None})
    text = f"{advice_text(state, _ctx(runtime).locale)} {wording('dialogue.anything_else')}"
    phase = "escalated" if state.get("phase") == "escalated" else "advice"
    return _deliver(state, runtime, _template(text, "advice"), {"advice_given": True, "phase": phase, "last_slot": None})


def escalate(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    tri = state["triage"]
    if state.get("crisis_pending"):
        draft = _template(crisis_message(_ctx(runtime).locale, tri.get("crisis_kind")), "crisis")
    else:
        draft = _template(wording("dialogue.emergency_flagged"), "emergency")
    return _deliver(state, runtime, draft, {
        "escalation_shown": tri["level"] == "emergency" or bool(state.get("escalation_shown")),
        "phase": "escalated", "last_slot": None})


def refuse(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    kind = (state.get("turn") or {}).get("request_kind", "non_medical")
    return _deliver(state, runtime, _template(refusal_message(kind), "refusal"), {"last_slot": None})


def close(state: ConsultationState, runtime: Runtime[RunContext]) -> Update:
    """The closing reply (the advice, if it was not given yet) and the summary built from the record."""
    text = wording("dialogue.close")
    if not state.get("advice_given") and state.get("messages"):
        text = advice_text(state, _ctx(runtime).locale)
    update: Update = {"phase": "closed", "advice_given": True, "last_slot": None}
    out = _deliver(state, runtime, _template(f"{text} {wording('dialogue.take_care')}", "close"), update)
    out["summary"] = build_summary(_applied(state, update))
    return out


def _deliver(state: ConsultationState, runtime: Runtime[RunContext], draft: Reply, update: Update) -> Update:
    """Stream the reply (emergency/crisis banner first), append it to the transcript, clear the turn's scratch.

    ``draft`` is a template or a model wording that already passed the output guard (``respond.word_question``)."""
    now = _applied(state, update)
    tri = now.get("triage") or {}
    banner = None
    if tri.get("level") == "emergency" or now.get("crisis_pending"):
        flags = tri.get("red_flags") or []
        banner = emergency_banner(crisis=bool(tri.get("crisis")), title=flags[0]["title"] if flags else None,
                                  locale=_ctx(runtime).locale)
        runtime.stream_writer({"banner": banner})
    runtime.stream_writer({"token": draft["text"]})
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
