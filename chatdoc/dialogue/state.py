"""Typed consultation state: everything the graph checkpoints (all patient text already redacted).

The state is plain JSON-friendly data (TypedDicts of str/int/bool/list/dict), so the checkpointer
serializes it without custom types and a summary can be rebuilt from it at any time.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import NotRequired, TypedDict  # pydantic (the service's views) needs this one on 3.11

from chatdoc.domain import Level, Phase, RedFlag

HPI_FIELDS: tuple[str, ...] = (
    "onset", "location", "duration", "character", "severity", "radiation", "timing", "aggravating", "relieving",
)
LIST_SLOTS: tuple[str, ...] = ("pmh", "medications", "allergies", "family_history", "concerns")


class Message(TypedDict):
    role: Literal["patient", "doctor"]
    text: str  # redacted


class Profile(TypedDict, total=False):
    age_years: float | None
    sex: Literal["male", "female"] | None
    pregnant: bool | None


class HPI(TypedDict, total=False):
    onset: str | None
    location: str | None
    duration: str | None
    character: str | None
    severity: int | str | None  # 0-10 when a number was given, else the patient's words
    radiation: str | None
    timing: str | None
    aggravating: str | None
    relieving: str | None
    associated: list[str]


class Social(TypedDict, total=False):
    smoking: str | None
    alcohol: str | None
    drugs: str | None
    occupation: str | None


class ROS(TypedDict):
    positives: list[str]  # concept ids
    negatives: list[str]  # pertinent negatives (concept ids)


class History(TypedDict):
    chief_complaint: str | None
    cc_concept: str | None  # symptom concept of the chief complaint
    complaint_set: str  # question-set id chosen for the complaint
    hpi: HPI
    pmh: list[str]
    medications: list[str]
    allergies: list[str]
    family_history: list[str]
    social: Social
    ros: ROS
    concerns: list[str]
    denied: list[str]  # slots the patient answered "no / none" to
    unknown: list[str]  # slots the patient answered "I don't know" to
    evidence: dict[str, str]  # slot -> the (redacted) patient words it came from
    # written by extraction only when there is something to keep (older records lack them):
    said: NotRequired[dict[str, str]]  # ROS concept -> the patient's own word for it ("chills", not "fever")
    social_notes: NotRequired[list[str]]  # social answers that fit no social field (third person)
    notes_neg: NotRequired[list[str]]  # background denials ("no" to PMH/medications/allergies/FH questions)
    notes: NotRequired[list[str]]  # verbatim answers to questions about a normal state
    other: NotRequired[list[str]]  # other things the patient said that fit no slot
    past_episodes: NotRequired[list[str]]  # earlier episodes of the present illness, in the patient's words with when
    not_used: NotRequired[list[str]]  # typed as another speaker's words or as instructions: never a fact
    narrative: NotRequired[str]  # external transcripts only: the patient's own substantive sentences


class Triage(TypedDict):
    level: Level
    red_flags: list[RedFlag]
    crisis: bool
    crisis_kind: str | None


class QuestionLog(TypedDict):
    slot: str
    turn: int  # patient turn index the question followed
    text: str
    source: Literal["model", "template"]
    answered: bool


class ReplyPart(TypedDict, total=False):
    kind: str  # ack | answer | question | advice | emergency | crisis | refusal | close | greeting
    text: str
    source: Literal["model", "template"]
    reasons: list[str]  # why a model attempt was not used
    question: str  # answer: the patient's question
    qclass: str  # answer: its class (chatdoc.dialogue.answers.QClass)
    handling: str  # answer: answered | grounded | handed_over
    url: str | None  # answer: the cited source
    passage_id: str | None  # answer: the MedQuAD passage it is grounded in


class Reply(TypedDict, total=False):
    text: str
    banner: str | None
    kind: str  # greeting | question | advice | emergency | crisis | refusal | ack | close
    source: Literal["model", "template"]
    slot: str | None
    guard_reasons: list[str]
    parts: list[ReplyPart]  # the reply's parts in order (acknowledgement, answers, question / advice)


def log_upsert(old: list[QuestionLog], new: list[QuestionLog]) -> list[QuestionLog]:
    """Reducer of ``question_log``: an entry for a (turn, slot) already logged replaces it (its ``answered``
    changed), any other entry is appended."""
    out = list(old or [])
    where = {(q["turn"], q["slot"]): i for i, q in enumerate(out)}
    for q in new or []:
        i = where.get((q["turn"], q["slot"]))
        if i is None:
            where[(q["turn"], q["slot"])] = len(out)
            out.append(q)
        else:
            out[i] = q
    return out


class TurnPlan(TypedDict, total=False):
    """Scratch of one patient turn, from ``intake`` to the reply node; cleared (None) before the checkpoint."""

    action: str  # ask | advise | escalate | refuse | close
    slot: str | None  # ask: the question-set slot to ask next (None = the chief complaint)
    request_kind: str  # classify_request kind of the patient's text
    questions: list[str]  # the patient's questions in this turn (to be answered)
    correction: bool  # the turn corrects something said before
    clarify: bool  # ask the last question again (the answer was unclear)
    substantive: bool  # the turn says something besides its questions (worth acknowledging)


class ConsultationState(TypedDict, total=False):
    session_id: str
    persona: str
    adapter: str | None
    phase: Phase
    messages: Annotated[list[Message], operator.add]  # nodes return only the new messages
    profile: Profile
    history: History
    triage: Triage
    question_log: Annotated[list[QuestionLog], log_upsert]
    last_slot: str | None  # slot of the question the patient is answering
    privacy: dict[str, Any]  # chatdoc.privacy.PlaceholderState (no raw identifiers)
    crisis_pending: bool  # crisis message shown, waiting for is_acknowledgement
    crisis_acknowledged: bool
    escalation_shown: bool  # the first emergency reply was given
    flagged: bool
    advice_given: bool
    reply: Reply
    summary: dict[str, Any] | None
    turn: TurnPlan | None  # per-turn scratch, None between turns (so it is never kept)


def empty_history() -> History:
    return History(
        chief_complaint=None, cc_concept=None, complaint_set="general", hpi=HPI(associated=[]), pmh=[], medications=[], allergies=[],
        family_history=[], social=Social(), ros=ROS(positives=[], negatives=[]), concerns=[], denied=[], unknown=[],
        evidence={},
    )


def new_state(session_id: str, persona: str, adapter: str | None, privacy: dict[str, Any]) -> ConsultationState:
    return ConsultationState(
        session_id=session_id, persona=persona, adapter=adapter, phase="history", messages=[], profile=Profile(),
        history=empty_history(), triage=Triage(level="unknown", red_flags=[], crisis=False, crisis_kind=None),
        question_log=[], last_slot=None, privacy=privacy, crisis_pending=False, crisis_acknowledged=False, escalation_shown=False,
        flagged=False, advice_given=False, reply=Reply(), summary=None, turn=None,
    )


def patient_turns(state: ConsultationState) -> list[str]:
    return [m["text"] for m in state.get("messages", []) if m["role"] == "patient"]
