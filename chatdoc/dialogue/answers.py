"""Answers to the patient's own questions: what kind of question it is, and a reply part that answers it.

The state machine decides that a question gets answered; this module decides how, by class:

    worry        "should I be worried?"        -> the current triage level in plain words (never below it)
    what_to_do   "should I go to A&E?"          -> the level's next step
    can_i        "can I take X / go to work?"   -> who can advise (pharmacist / GP), never a dose; level reminder
    what_is      "what is shingles?"            -> grounded in MedQuAD (source link) or handed to the team
    how_long     "how long will it last?"       -> grounded in MedQuAD or handed to the team
    practical    "when will someone call me?"  -> what happens next
    dose         "how many can I take?"         -> no dose; the pharmacist or GP can say
    diagnosis    "is it cancer?"                -> no diagnosis; the clinician will assess, and why
    other        anything else                  -> grounded if MedQuAD has a relevant passage, else handed over

Every answer that is not a knowledge answer is reviewed text (``answers.*`` in configs/texts.yaml) chosen by
class and triage level, so an answer never says less than the triage level. Knowledge answers are grounded
(``chatdoc.knowledge``): each sentence must be supported by the cited passage; at urgent and emergency levels
the level's next step follows them. Each question also stays in the summary's patient concerns.

The classes are recognised by patterns over the question sentence. Written here (no library classifies
patients' questions into these dispositions); the patterns follow the question forms of the issue's classes,
not any test phrasing, and the catch-all ``other`` still gets an answer or a hand-over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal

from chatdoc.knowledge.answer import TIME_SPAN
from chatdoc.texts import text as wording

QClass = Literal["worry", "what_to_do", "can_i", "what_is", "how_long", "practical", "dose", "diagnosis", "other"]
Handling = Literal["answered", "grounded", "handed_over"]

_MED = (r"(?:paracetamol|ibuprofen|aspirin|codeine|co-codamol|naproxen|tablets?|pills?|capsules?|medicines?|"
        r"medications?|meds|antibiotics?|inhalers?|drops|spray|cream|doses?|dosage|mg|ml)")
_PATTERNS: list[tuple[QClass, re.Pattern[str]]] = [
    ("dose", re.compile(
        rf"\bhow (?:much|many)\b[^?]{{0,40}}\b(?:take|have|give|use)\b|\bwhat (?:dose|dosage|strength)\b|\bdos(?:e|age)\b[^?]{{0,30}}"
        rf"\b(?:should|can|do)\b|\b(?:up|increase|double|raise|lower|reduce)\b[^?]{{0,15}}\b(?:dose|dosage)\b"
        rf"|\bhow often (?:can|should|do) (?:i|we|he|she|they) (?:take|give|have|use)\b|\bmax(?:imum)? (?:dose|amount)\b"
        rf"|\bmore than \w+ {_MED}", re.I)),
    ("diagnosis", re.compile(
        r"\b(?:do|could|might|would) (?:you think )?(?:i|he|she|they|we|my \w+) (?:have|has|got)\b(?! to\b)|"
        r"\b(?:could|might|can) (?:it|this|that) be\b|\b(?:it'?s|it is|is it|is this) (?:just |only |probably )?(?:a |an )?"
        r"[\w-]+(?: [\w-]+)? (?:isn'?t it|right|then)\W*$|\bhave (?:i|they|we) got\b"
        r"|\bhas (?:he|she) got\b|\b(?:is|could|might) (?:it|this|that) (?:be )?(?:a |an )?(?:cancer|tumou?r|heart attack|stroke|"
        r"infection|\w+itis|\w+oma|diabetes|covid|sepsis|meningitis|appendicitis|blood clot|clot)\b|\bwhat(?:'s| is) wrong with\b"
        r"|\bwhat (?:do you think )?(?:it|this) (?:is|could be|might be)\b|\bwhat (?:could|might) (?:it|this|cause)\b"
        r"|\bis it (?:cancer|serious illness)\b|\bwhat(?:'s| is) causing\b|\bdiagnos", re.I)),
    ("can_i", re.compile(r"\b(?:am i|is (?:he|she|it)|are (?:we|they)) (?:ok|okay|alright|all right|fine|safe|allowed) to\b", re.I)),
    ("worry", re.compile(
        r"\bshould (?:i|we) (?:be )?(?:worried|concerned|scared|panick?ing|worry|panic)\b|\b(?:is|does) (?:it|this|that) "
        r"(?:sound )?(?:\w+ )?(?:serious|bad|dangerous|worrying|normal|concerning|something to worry|an emergency|urgent)\b"
        r"|\b(?:do|should) (?:i|we) (?:need to )?worry\b|\b(?:am i|is (?:he|she|my \w+)|will (?:i|he|she) be) (?:going to be )?"
        r"(?:ok|okay|alright|all right|fine)\b|\bhow worried\b|\banything to worry\b|\bworth worrying\b"
        r"|\bis (?:it|this) (?:life|something) ?threatening\b|\bam i (?:dying|overreacting)\b|\b(?:worried|worry|worrying|"
        r"serious|concerned|dangerous|harmful)\b|\b(?:is|will) (?:it|this|that) (?:going to )?(?:affect|damage|harm|hurt|leave)\b",
        re.I)),
    ("what_to_do", re.compile(
        r"\bwhat (?:should|do|can|shall) (?:i|we) do\b|\bshould (?:i|we) (?:go|come|call|ring|phone|see|book|wait|stay|get)\b"
        r"|\b(?:do|shall) (?:i|we) (?:need to )?(?:go|call|ring|see|book|come in|get seen)\b|\b(?:a&e|a and e|a & e|er|emergency room|"
        r"hospital|urgent care|walk.in)\b[^?]{0,20}\?|\b(?:call|ring) (?:999|111|an ambulance)\b|\bneed (?:an )?ambulance\b"
        r"|\bwait (?:it out|and see|until)\b|\bhow soon\b|\bwhat(?:'s| is| are) (?:the )?next step"
        r"|\b(?:do|will|would) (?:i|we|he|she|they) need (?:an? |some |to )?\w+", re.I)),
    ("practical", re.compile(
        r"\bwhen will (?:someone|somebody|the (?:doctor|gp|nurse|team|clinic|surgery|practice)|a (?:doctor|gp|nurse)|"
        r"they|you|i (?:hear|get|be seen))\b|\b(?:will|does|do|can) (?:a |the )?(?:doctor|gp|nurse|someone|somebody|clinician|"
        r"team|real person|human) (?:see|read|look|call|ring|review|get|check|phone)\b|\bhow long (?:is|will) (?:the )?wait"
        r"|\b(?:sick|fit) note\b|\bappointment\b|\bwho (?:will|is going to) (?:see|read|call|look)\b|\bwhat happens (?:next|now)\b"
        r"|\b(?:is|are) (?:this|my answers|it) (?:private|confidential|saved|stored)\b|\b(?:talk|speak) to (?:a|the|an actual|"
        r"a real) (?:doctor|person|human|nurse|gp)\b|\bare you (?:a )?(?:real|human|person|doctor|bot|robot|computer)\b"
        r"|\b(?:will|would|does|do|can|could) (?:\w+ ){0,4}(?:need|want|get|give|write|send|book|arrange)\b[^?]{0,25}"
        r"\b(?:note|letter|certificate|referral|appointment|call ?back|prescription|someone|somebody)\b"
        r"|\b(?:will|would|can) (?:the )?(?:gp|doctor|nurse|pharmacist|they|someone)\b[^?]{0,20}\b(?:be able to|prescribe|"
        r"look at|see (?:me|her|him|them))\b", re.I)),
    ("can_i", re.compile(
        r"\b(?:can|could|should|may) (?:i|we|he|she|they|my \w+) (?:still |just )?(?:take|have|use|drink|eat|go|drive|work|"
        r"exercise|fly|travel|swim|shower|bathe?|run|carry on|keep|mix|combine|give|try|play|return|stop|sleep|lift)\b"
        r"|\bis it (?:ok|okay|safe|alright|all right|fine|bad) (?:for (?:me|him|her|them) )?to\b|\bam i (?:ok|okay|allowed|safe) to\b"
        r"|\b(?:ok|okay|safe|alright) to (?:take|have|use|drink|drive|work|go|give|exercise|fly)\b", re.I)),
    ("how_long", re.compile(
        r"\bhow long (?:will|does|do|should|until|till|before|is (?:it|this) going|can|would|might)\b|\bwhen (?:will|should|does|"
        r"would) (?:it|this|that|the \w+|my \w+) (?:go|get better|clear|stop|settle|ease|heal|improve|pass)\b"
        r"|\bhow long (?:it|this|they) (?:lasts?|will last|takes?)\b|\bwill (?:it|this) (?:go away|get better|last|clear up)\b"
        r"|\bhow long (?:is|are) (?:people|you) (?:ill|sick|contagious|infectious)\b|\bgrow out of\b"
        r"|\b(?:ever|eventually|just) (?:go away|get better|clear up|heal|stop)\b", re.I)),
    ("what_is", re.compile(
        r"\bwhat(?:'s| is| are| does| do| exactly is| actually is| even is)\b|\bwhat(?:'s| is) (?:a|an|the)\b|\bmean(?:s|ing)?\b"
        r"|\bwhat causes\b|\bwhy (?:do|does|am|is|would|did|are|can't|cant)\b|\b(?:is|are) (?:it|they|\w+) (?:contagious|catching|"
        r"infectious|hereditary|genetic|common|curable|treatable)\b|\b(?:can|could) you (?:tell|explain)\b|\bhow (?:do|does|is|are) "
        r"(?:\w+ ){0,3}(?:spread|caught|treated|diagnosed|tested|cured|passed)\b|\bhow do you (?:get|catch|treat)\b"
        r"|\bthe same (?:thing )?as\b|\bdifference between\b", re.I)),
]
_LEVELS = ("emergency", "urgent", "routine", "self_care")


def classify(question: str) -> QClass:
    """The class of one question sentence (first matching class in order of consequence: dose, diagnosis, ...)."""
    q = " ".join(question.split())
    for cls, rx in _PATTERNS:
        if rx.search(q):
            return cls
    return "other"


@dataclass
class Answer:
    question: str
    qclass: QClass
    text: str
    handling: Handling
    source: Literal["model", "template"] = "template"
    url: str | None = None
    title: str | None = None
    passage_id: str | None = None
    reasons: list[str] = field(default_factory=list)


def _level(level: str | None) -> str:
    return level if level in _LEVELS else "routine"


def _numbers(locale: str | None) -> dict[str, str]:
    from chatdoc.safety.crisis import lines_for

    ll = lines_for(locale)
    return {"emergency_number": ll.emergency_number, "emergency_department": ll.emergency_department,
            "urgent_service": ll.urgent_service}


def _by_level(key: str, level: str, locale: str | None) -> str:
    return wording(f"answers.{key}.{_level(level)}", **_numbers(locale))


def answer(question: str, *, level: str | None, grounded: Callable[[str], object] | None = None,
           locale: str | None = None) -> Answer:
    """The reply part that answers ``question`` at triage ``level``. ``grounded(question)`` returns a
    ``chatdoc.knowledge.GroundedAnswer`` (or None when knowledge answers are off)."""
    cls = classify(question)
    lvl = _level(level)
    if cls in ("worry", "what_to_do", "practical", "dose", "diagnosis", "can_i"):
        return Answer(question, cls, _by_level(cls, lvl, locale), "answered")
    # knowledge: what_is, how_long, other
    ga = grounded(question) if grounded is not None else None
    if ga is not None and cls == "how_long" and not TIME_SPAN.search(getattr(ga, "text", "")):
        ga.supported, ga.reason = False, "the passage gives no time span"  # a quote that does not answer it
    if ga is not None and getattr(ga, "text", "") and getattr(ga, "supported", False):
        source_line = wording("answers.knowledge.source", title=ga.title or "NIH", url=ga.url or "")
        caveat = _by_level("knowledge.caveat", lvl, locale)
        body = f"{ga.text.strip()} {source_line} {caveat}".strip()
        return Answer(question, cls, body, "grounded", source="model" if ga.method == "model" else "template",
                      url=ga.url, title=ga.title, passage_id=getattr(ga.passage, "id", None), reasons=[ga.reason] if getattr(ga, "reason", "") else [])
    reason = getattr(ga, "reason", "knowledge answers off") if ga is not None else "knowledge answers off"
    return Answer(question, cls, _by_level("handover", lvl, locale), "handed_over", reasons=[reason])
