"""Proactive questioning policy: the most important unfilled item next, one at a time.

Order: triage-changing items (red-flag screening) first, then by priority; once the triage level is emergency
(nothing can raise it) the screening items follow the others. An item is skipped when its
slot is already filled (answered, volunteered earlier, denied or "don't know") or was already asked.
History taking stops when coverage of the plan reaches ``dialogue.coverage_target``, the question
budget ``dialogue.max_questions`` (or the persona's own) is spent, or the patient wants to finish.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatdoc.dialogue.extract import is_filled
from chatdoc.dialogue.questions import Item, plan
from chatdoc.dialogue.state import ConsultationState


@dataclass
class Decision:
    item: Item | None  # None = history taking is over
    coverage: float


def coverage(state: ConsultationState) -> float:
    items = plan(state["history"]["complaint_set"])
    if not items:
        return 1.0
    done = sum(1 for it in items if is_filled(it.slot, state["history"], state.get("profile", {})))
    return done / len(items)


def budget(state: ConsultationState, max_questions: int, persona_max: int | None = None) -> int:
    return min(max_questions, persona_max) if persona_max else max_questions


def next_question(state: ConsultationState, max_questions: int, coverage_target: float,
                  persona_max: int | None = None, wants_finish: bool = False) -> Decision:
    cov = coverage(state)
    if wants_finish:  # the patient wants to finish
        return Decision(None, cov)
    asked = [q["slot"] for q in state.get("question_log", [])]
    if len(asked) >= budget(state, max_questions, persona_max) or cov >= coverage_target:
        return Decision(None, cov)
    items = plan(state["history"]["complaint_set"])
    by_slot = {it.slot: it for it in items}
    asked_all = set(asked) | {c for s in asked if s in by_slot for c in by_slot[s].covers}
    todo = [it for it in items
            if it.slot not in asked_all and not is_filled(it.slot, state["history"], state.get("profile", {}))]
    if state.get("profile", {}).get("sex") == "male":
        todo = [it for it in todo if it.slot not in ("ros.pregnant", "profile.pregnant")]
    if not is_pain(state):
        todo = [it for it in todo if not it.pain_only]
    if not todo:
        return Decision(None, cov)
    if (state.get("triage") or {}).get("level") == "emergency":
        # already escalated: a red-flag screening question can no longer change the triage level, so the history
        # the receiving team needs (onset, other symptoms, background) comes first, screening after it
        todo.sort(key=lambda it: (it.triage, -it.priority))
    else:
        todo.sort(key=lambda it: (not it.triage, -it.priority))
    remaining = budget(state, max_questions, persona_max) - len(asked)
    core = [it for it in todo if it.core]
    if core and remaining <= len(core):
        todo = core  # keep enough questions to reach onset, associated symptoms, background, social and ROS
    return Decision(todo[0], cov)


_PAIN = re.compile(r"\b(?:pain\w*|ache\w*|aching|hurts?|hurting|sore|cramp\w*|tender\w*|headaches?|migraines?|"
                   r"stomach ?ache|tummy ?ache|backache)\b", re.I)


def is_pain(state: ConsultationState) -> bool:
    h = state["history"]
    return bool(_PAIN.search(" ".join([h.get("chief_complaint") or "", (h.get("cc_concept") or "").replace("_", " ")])))
