"""The consultation graph: LangGraph wiring only (the work lives in the sibling modules).

    START -> greet -> intake ──(end)──────────────────────────────> close -> guard -> respond -> summarize -> END
                        │ (patient text)
                        v
                      redact -> safety -> extract -> decide -> ask | advise | escalate | refuse | close
                                                                  └──────> guard -> respond -> intake (next turn)

* Patient turns enter through ``interrupt()`` in ``intake`` and are resumed with
  ``Command(resume={"text": ..., "privacy": ...})`` on the Redis checkpointer (thread_id = session id).
  State is never rebuilt by hand: the checkpoint IS the consultation.
* PRIVACY: LangGraph writes resume values into the checkpointer (pending writes), so the caller
  (``chatdoc.service``) redacts the patient text with the session's ``PlaceholderState`` BEFORE it is
  passed as the resume value. The ``redact`` node re-checks it (placeholders are idempotent: a
  ``<PERSON_1>`` is not an identifier), so raw identifiers never reach Redis, the logs or the model prompt.
* Durability: the service invokes with ``durability="exit"``: one checkpoint per turn, written when
  the graph stops at the next ``interrupt()``. A turn killed half-way leaves the previous checkpoint
  (still waiting for that patient turn) and can simply be sent again.
* Streaming: ``respond`` emits ``{"banner": ...}`` and ``{"token": ...}`` through LangGraph's custom
  stream writer (``stream_mode="custom"``).
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from chatdoc.dialogue import advice as advice_mod
from chatdoc.dialogue import respond as respond_mod
from chatdoc.dialogue.extract import extract_turn, is_filled, wants_finish
from chatdoc.dialogue.personas import get_persona
from chatdoc.dialogue.policy import next_question
from chatdoc.dialogue.questions import choose_set, plan
from chatdoc.dialogue.state import ConsultationState, Reply, patient_turns
from chatdoc.dialogue.summary import build_summary
from chatdoc.log import logger

ASK_COMPLAINT = "Could you tell me in your own words what the main problem is, and when it started?"
ASK_COMPLAINT_CHILD = "Could you tell me in your own words what the main problem with your child is, and when it started?"


def _settings():
    from chatdoc.config import get_settings

    return get_settings()


def _writer():
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except Exception:  # outside a streaming run
        return lambda _x: None


# ---------------------------------------------------------------------------------------------- nodes
def greet(state: ConsultationState) -> dict[str, Any]:
    p = get_persona(state.get("persona"))
    return {"draft": Reply(text=p.greeting.strip(), kind="greeting", source="template", slot=None, guard_reasons=[]),
            "phase": "history"}


def intake(state: ConsultationState) -> dict[str, Any]:
    value = interrupt({"await": "patient", "session_id": state.get("session_id")})
    if not isinstance(value, dict):
        value = {"text": str(value)}
    return {"pending": value}


def route_intake(state: ConsultationState) -> str:
    return "close" if state.get("pending", {}).get("action") == "end" else "redact"


def redact(state: ConsultationState) -> dict[str, Any]:
    from chatdoc.privacy import PlaceholderState, get_redactor

    pending = state.get("pending") or {}
    priv = pending.get("privacy") or state.get("privacy")
    pstate = PlaceholderState.model_validate(priv) if priv else PlaceholderState.new()
    red = get_redactor().redact(str(pending.get("text", "")), pstate)  # re-check (idempotent on placeholders)
    msgs = list(state.get("messages", [])) + [{"role": "patient", "text": red.text}]
    return {"messages": msgs, "privacy": red.state.model_dump(), "pending": {"text": red.text}}


def safety(state: ConsultationState) -> dict[str, Any]:
    from chatdoc.safety import assess, classify_request, is_acknowledgement

    text = state["pending"]["text"]
    prof = state.get("profile") or {}
    res = assess(patient_turns(state), {k: v for k, v in prof.items() if v is not None})
    req = classify_request(text)
    turn_crisis = assess([text]).crisis
    pending = bool(state.get("crisis_pending"))
    acknowledged = bool(state.get("crisis_acknowledged"))
    if turn_crisis:
        pending, acknowledged = True, False
    elif pending and is_acknowledgement(text):
        pending, acknowledged = False, True
    elif res.crisis and not acknowledged:
        pending = True
    flags = [{"id": f.id, "title": f.title, "level": f.level, "evidence": f.evidence} for f in res.fired]
    flagged = bool(state.get("flagged")) or res.level == "emergency" or res.crisis
    phase = state.get("phase", "history")
    if res.level == "emergency" or res.crisis:
        phase = "escalated"
    return {
        "triage": {"level": res.level, "red_flags": flags, "crisis": res.crisis, "crisis_kind": res.crisis_kind},
        "request_kind": req.kind, "crisis_pending": pending, "crisis_acknowledged": acknowledged,
        "flagged": flagged, "phase": phase, "wants_finish": wants_finish(text),
    }


def extract(state: ConsultationState) -> dict[str, Any]:
    text = state["pending"]["text"]
    log = [dict(q) for q in state.get("question_log", [])]
    last_slot = state.get("last_slot")
    question = log[-1]["text"] if log and log[-1]["slot"] == last_slot else None
    item = next((it for it in plan(state["history"].get("complaint_set", "general")) if it.slot == last_slot), None)
    hist, prof, _filled = extract_turn(state["history"], state.get("profile") or {}, text, last_slot=last_slot,
                                       question=question, is_first=state["history"].get("chief_complaint") is None,
                                       covers=tuple(item.covers) if item and question else ())
    if hist.get("complaint_set", "general") == "general" and hist.get("chief_complaint"):
        persona = get_persona(state.get("persona"))
        # the complaint itself (not negated mentions such as "no fever") picks the question set
        hist["complaint_set"] = choose_set(" ".join([hist["chief_complaint"], *hist["hpi"].get("associated", [])]),
                                           persona.uses)
    if log and last_slot and log[-1]["slot"] == last_slot:
        log[-1]["answered"] = is_filled(last_slot, hist, prof)
    return {"history": hist, "profile": prof, "question_log": log}


def decide(state: ConsultationState) -> dict[str, Any]:
    s = _settings()
    level = state["triage"]["level"]
    if state.get("crisis_pending"):
        action = "escalate"
    elif state.get("request_kind", "ok") != "ok":
        action = "refuse"
    elif level == "emergency" and not state.get("escalation_shown"):
        action = "escalate"
    elif state.get("phase") == "advice":
        action = "close" if state.get("wants_finish") or _is_no(state["pending"]["text"]) else "advise"
    elif state.get("wants_finish") and state.get("advice_given"):
        action = "close"
    elif state["history"].get("chief_complaint") is None:
        action = "ask"
    else:
        persona = get_persona(state.get("persona"))
        d = next_question(state, s.dialogue.max_questions, s.dialogue.coverage_target, persona.max_questions)
        action = "ask" if d.item is not None else "advise"
    return {"action": action}


def _is_no(text: str) -> bool:
    from chatdoc.dialogue.extract import NEG_ANSWER

    return bool(NEG_ANSWER.search(text.strip().lower())) and len(text.split()) <= 6


def route_decide(state: ConsultationState) -> str:
    return state["action"]


def ask(state: ConsultationState) -> dict[str, Any]:
    s = _settings()
    persona = get_persona(state.get("persona"))
    if state["history"].get("chief_complaint") is None:
        text = ASK_COMPLAINT_CHILD if persona.audience == "parent" else ASK_COMPLAINT
        return {"draft": Reply(text=text, kind="question", source="template", slot=None, guard_reasons=[]),
                "last_slot": None}
    d = next_question(state, s.dialogue.max_questions, s.dialogue.coverage_target, persona.max_questions)
    item = d.item
    recent = [m["text"] for m in state.get("messages", []) if m["role"] == "doctor"][-3:]
    w = respond_mod.word_question(item, persona, state.get("messages", []), adapter=state.get("adapter"),
                                  use_model=s.dialogue.use_model_wording,
                                  red_flag=state["triage"]["level"] in ("emergency", "urgent"), recent_outputs=recent)
    turn = len(patient_turns(state))
    log = list(state.get("question_log", [])) + [
        {"slot": item.slot, "turn": turn, "text": w.text, "source": w.source, "answered": False}]
    return {"draft": Reply(text=w.text, kind="question", source=w.source, slot=item.slot, guard_reasons=w.reasons),
            "question_log": log, "last_slot": item.slot}


def advise(state: ConsultationState) -> dict[str, Any]:
    if state.get("advice_given") and state.get("phase") == "advice":
        text = ("Thank you, I've added that to your notes for the team. Is there anything else you'd like them to know? "
                "If not, just say \"that's all\".")
        return {"draft": Reply(text=text, kind="ack", source="template", slot=None, guard_reasons=[]), "last_slot": None}
    text = advice_mod.advice_text(state) + " Is there anything else you'd like to add? If not, just say \"that's all\"."
    phase = "escalated" if state.get("phase") == "escalated" else "advice"
    return {"draft": Reply(text=text, kind="advice", source="template", slot=None, guard_reasons=[]),
            "advice_given": True, "phase": phase, "last_slot": None}


def escalate(state: ConsultationState) -> dict[str, Any]:
    from chatdoc.safety import crisis_message

    tri = state["triage"]
    if state.get("crisis_pending"):
        text = crisis_message(None, tri.get("crisis_kind"))
        kind = "crisis"
    else:
        text = ("I've flagged this as urgent for the clinical team. If you are able to, you can keep telling me what's "
                "happening while you get help.")
        kind = "emergency"
    return {"draft": Reply(text=text, kind=kind, source="template", slot=None, guard_reasons=[]),
            "escalation_shown": tri["level"] == "emergency" or bool(state.get("escalation_shown")),
            "phase": "escalated", "last_slot": None}


def refuse(state: ConsultationState) -> dict[str, Any]:
    from chatdoc.safety import refusal_message

    return {"draft": Reply(text=refusal_message(state["request_kind"]), kind="refusal", source="template", slot=None,
                           guard_reasons=[]), "last_slot": None}


def close(state: ConsultationState) -> dict[str, Any]:
    text = "Thank you for your time. I've put together a summary for the clinical team."
    if not state.get("advice_given") and state.get("messages"):
        text = advice_mod.advice_text(state)
    return {"draft": Reply(text=text + " Take care.", kind="close", source="template", slot=None, guard_reasons=[]),
            "phase": "closed", "advice_given": True, "last_slot": None}


def guard(state: ConsultationState) -> dict[str, Any]:
    """Last check on whatever will be shown (model wording already went through ``guarded``)."""
    from chatdoc.safety import guard_output, safe_template

    draft = dict(state["draft"])
    if draft.get("source") == "model":
        v = guard_output(draft["text"], red_flag_present=state.get("triage", {}).get("level") in ("emergency", "urgent"))
        if not v.ok:
            logger.info("final guard replaced a model reply: {}", ",".join(v.reasons))
            draft.update(text=safe_template("generic"), source="template", guard_reasons=list(v.reasons))
    return {"draft": draft}


def respond(state: ConsultationState) -> dict[str, Any]:
    from chatdoc.safety import assess, emergency_instruction

    draft = dict(state["draft"])
    tri = state.get("triage") or {}
    banner = None
    if tri.get("level") == "emergency" or state.get("crisis_pending"):
        res = assess(patient_turns(state)) if patient_turns(state) else None
        banner = emergency_instruction(res)
    write = _writer()
    if banner:
        write({"banner": banner})
    for piece in respond_mod.chunks(draft["text"]):
        write({"token": piece})
    shown = f"{banner}\n\n{draft['text']}" if banner else draft["text"]
    msgs = list(state.get("messages", [])) + [{"role": "doctor", "text": shown}]
    reply = Reply(text=draft["text"], banner=banner, kind=draft.get("kind", ""), source=draft.get("source", "template"),
                  slot=draft.get("slot"), guard_reasons=draft.get("guard_reasons", []))
    return {"messages": msgs, "reply": reply, "pending": {}}


def route_respond(state: ConsultationState) -> str:
    return "summarize" if state.get("phase") == "closed" else "intake"


def summarize(state: ConsultationState) -> dict[str, Any]:
    return {"summary": build_summary(state)}


# ---------------------------------------------------------------------------------------------- wiring
def _timed(name: str, fn):
    def run(state):
        t0 = time.perf_counter()
        out = fn(state)
        logger.debug("node {} {:.1f} ms", name, (time.perf_counter() - t0) * 1000)
        return out

    run.__name__ = name
    return run


def build_graph() -> StateGraph:
    g = StateGraph(ConsultationState)
    for name, fn in [("greet", greet), ("intake", intake), ("redact", redact), ("safety", safety),
                     ("extract", extract), ("decide", decide), ("ask", ask), ("advise", advise),
                     ("escalate", escalate), ("refuse", refuse), ("close", close), ("guard", guard),
                     ("respond", respond), ("summarize", summarize)]:
        g.add_node(name, fn if name == "intake" else _timed(name, fn))
    g.add_edge(START, "greet")
    g.add_edge("greet", "guard")
    g.add_conditional_edges("intake", route_intake, {"close": "close", "redact": "redact"})
    g.add_edge("redact", "safety")
    g.add_edge("safety", "extract")
    g.add_edge("extract", "decide")
    g.add_conditional_edges("decide", route_decide, {k: k for k in ("ask", "advise", "escalate", "refuse", "close")})
    for n in ("ask", "advise", "escalate", "refuse", "close"):
        g.add_edge(n, "guard")
    g.add_edge("guard", "respond")
    g.add_conditional_edges("respond", route_respond, {"summarize": "summarize", "intake": "intake"})
    g.add_edge("summarize", END)
    return g


_compiled: dict[int, Any] = {}


def get_graph(checkpointer=None):
    """The compiled graph on ``checkpointer`` (default: chatdoc.memory's Redis checkpointer)."""
    if checkpointer is None:
        from chatdoc.memory import get_checkpointer

        checkpointer = get_checkpointer()
    key = id(checkpointer)
    g = _compiled.get(key)
    if g is None:
        g = build_graph().compile(checkpointer=checkpointer)
        _compiled.clear()
        _compiled[key] = g
    return g


def unanswered_plan(state: ConsultationState) -> list[str]:
    return [it.slot for it in plan(state["history"]["complaint_set"])
            if not is_filled(it.slot, state["history"], state.get("profile") or {})]

