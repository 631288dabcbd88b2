"""One analysis of a patient turn -> :class:`~chatdoc.clinical.findings.Findings`.

    concepts (patterns + HPO synonyms, then semantic matching of clauses)   chatdoc.clinical.concepts
    numbers (vitals, ages, gestation, durations, onsets, severity, doses)   chatdoc.clinical.numbers
    context of every span (ConText: negated, possible, historical, ...)    chatdoc.clinical.context
    attributes (onset, duration, severity, site, character, ...)          chatdoc.clinical.attributes
      -> one assertion and subject per finding, attributes from the same sentence

:func:`analyse_record` runs it over a consultation's turns in order, carrying what one turn tells the next: who
the patient is when a carer is talking ("my 8-month-old has a temperature": the baby is the patient, the
speaker's own "I'm 34 and diabetic" is not), and corrections ("sorry, I meant ...") that supersede an earlier
finding of the same concept (the record keeps both; the earlier one is marked ``superseded_by``).
Triage (:mod:`chatdoc.safety.triage`), the history (:mod:`chatdoc.dialogue.extract`) and the summary read the
result; nothing else matches concepts.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from chatdoc.clinical.attributes import read_attributes
from chatdoc.clinical.concepts import Match, get_bank, get_semantic
from chatdoc.clinical.findings import Attributes, Finding, Findings
from chatdoc.clinical.text import normalise, sentences

_CARER_OPENING = re.compile(
    r"\bmy\s+(?:\d+[\s-]*(?:year|yr|month|week|day)s?[\s-]*old\s+|little\s+|(?:baby|infant|newborn|toddler)\s+)?"
    r"(baby|son|daughter|boy|girl|child|kid|toddler|little one|newborn|infant|dad|father|mum|mom|mother|husband|"
    r"wife|partner|grandma|grandmother|gran|nan|nana|grandad|grandfather|grandpa)\b"
    r"|\bmy\s+\d+[\s-]*(?:year|yr|month|week|day)s?[\s-]*old\b|\b(?:i(?:'?m| am) (?:writing|asking|messaging) (?:for|about|on behalf of))\b",
    re.I)
_FIRST_PERSON_SYMPTOM = re.compile(r"\b(?:i(?:'?ve| have| am|'?m)? (?:got|have|had|been|feel|am)|my (?:head|chest|throat|stomach|tummy|back|leg|arm))\b", re.I)
_CORRECTION = re.compile(r"\b(?:sorry,? i (?:meant|mean|said)|i meant\b|i mean\b|actually\b|correction\b|no wait\b|"
                         r"not (?:\w+ ){0,3}(?:i|as i) said\b|i said (?:\w+ ){0,4}but\b|i was wrong\b|let me correct|to correct\b|"
                         r"scratch that\b|i got (?:that|it) wrong|i should have said|"
                         r"\b(?:read|got|said|wrote|typed) (?:it|that) wrong\b|\bmisread\b|\bmy mistake\b|\btypo\b|"
                         r"\bsorry,? (?:it'?s|it is|it was|he'?s|she'?s|they'?re|i'?m)\b|"
                         r"\b(?:it'?s|it is|it was|he'?s|she'?s|they'?re) (?:more like |actually )?[\w.'-]+(?: [\w.'-]+){0,2},? "
                         r"not (?:the |my |a )?[\w.'-]+\W*$)", re.I)
#: the correction cue ("sorry, I meant ...", "it's 38.4 not 38.2"): one home, also read by the reply composer
CORRECTION_CUE = _CORRECTION
_QUESTION = re.compile(r"^\W*(?:can|could|may|might|should|shall|would|will|is|are|am|do|does|did|what|which|how|why|when|"
                       r"where|must|any chance)\b", re.I)
_ALLERGY = re.compile(r"\b(?:allerg\w*|reaction to|reacts? to|intoleran\w*|sensitive to)\b", re.I)
_NOW = re.compile(r"\b(?:now|right now|today|tonight|this (?:morning|afternoon|evening)|just (?:now|took|had)|"
                  r"\d+ (?:mins?|minutes?|hours?|hrs?) ago|an hour ago|minutes ago|since (?:taking|i took|eating))\b", re.I)
_VITAL_CONCEPT = {"temperature": "temp_c", "heart_rate": "heart_rate", "resp_rate": "resp_rate", "spo2": "spo2",
                  "blood_pressure": "systolic_bp", "glucose": "glucose_mmol"}
_VITAL_LABEL = {"temp_c": "temperature", "heart_rate": "pulse", "resp_rate": "breathing rate", "spo2": "oxygen saturation",
                "systolic_bp": "blood pressure", "glucose_mmol": "blood glucose"}


_CHILD = re.compile(r"\b(?:baby|babys|son|daughter|boy|girl|child|kid|toddler|little one|newborn|infant|twins?|old|"
                    r"lo|bub|he|she|him|her|they)\b")
_SAME = {"dad": "dad|father|he|him", "father": "dad|father|he|him", "mum": "mum|mom|mother|she|her",
         "mom": "mum|mom|mother|she|her", "mother": "mum|mom|mother|she|her", "husband": "husband|he|him",
         "wife": "wife|she|her", "partner": "partner|he|him|she|her|they",
         "grandma": "grandma|grandmother|gran|nan|nana|she|her", "grandad": "grandad|grandfather|grandpa|he|him"}
for _k in ("grandmother", "gran", "nan", "nana"):
    _SAME[_k] = _SAME["grandma"]
for _k in ("grandfather", "grandpa"):
    _SAME[_k] = _SAME["grandad"]
_NOBODY_IN_PARTICULAR = re.compile(r"^(?:my )?(?:everyone|everybody|someone|somebody|anyone|anybody|people|nobody|no one)$")


def _is_patient(person: str, referent: str) -> bool:
    """Whether a carer's mention of ``person`` is the patient they are writing about (``referent``)."""
    if not person:
        return True
    if referent in _SAME:
        return bool(re.search(rf"\b(?:{_SAME[referent]})\b", person))
    return bool(_CHILD.search(person))


_SPEAKER_HAS = re.compile(r"\b(?:i(?:'?m| am)|i(?:'?ve| have)(?: got| had| been)?|i get|i had|myself|me too|my own)\b", re.I)
_OTHER_REF = re.compile(r"\b(?:he|she|him|her|his|they|them|their|baby|son|daughter|child|kid|toddler|dad|mum|mom|"
                        r"husband|wife|partner)\b", re.I)


def _speaker_owns(sentence: str) -> bool:
    """In a carer's message, a sentence where the carer says something of themself ("I'm 41 and I have diabetes
    myself") and nobody else is named: its findings are the speaker's, not the patient's."""
    return bool(_SPEAKER_HAS.search(sentence)) and not _OTHER_REF.search(sentence)


# "a 3-week history of ..." is the present illness, not past history
_ILLNESS_HISTORY = re.compile(r"\b(?:\d+|a|one|two|three|four|five|six|several|few)[- ](?:hours?|days?|weeks?|months?)[- ]history of\b",
                              re.I)
# a gestation that dates the patient's birth ("born at 36 weeks' gestation", "premature birth at 32 weeks")
_BIRTH_BEFORE = re.compile(r"\b(?:born|birth|delivered|premature(?:ly)?|pre-?term|prem)\b(?:\W+\w+){0,3}?\W*$", re.I)
# concepts where the other person named is the one who acts on the patient ("my boyfriend hits me")
_DONE_TO_THE_PATIENT = {"abuse", "assaulted", "violence_injury", "harm_others"}


def _assertion(ctx, carer_referent: str | None, sentence: str = "", concept: str = "") -> tuple[str, str, str | None]:
    """(assertion, subject, when) from a ConText result."""
    subject = "patient"
    person = (ctx.person or "").lower().strip()
    if ctx.experiencer != "patient" and not _NOBODY_IN_PARTICULAR.match(person) and concept not in _DONE_TO_THE_PATIENT:
        if not (carer_referent and _is_patient(person, carer_referent)):  # else: the carer talks about the patient
            return ("family" if ctx.experiencer == "family" else "other_person"), subject, None
    elif ctx.speaker and carer_referent and _speaker_owns(sentence):
        subject = "speaker"  # a carer's own facts ("I'm 34 and diabetic")
    if ctx.hypothetical:
        return "hypothetical", subject, None
    if ctx.asked_about:
        return "asked_about", subject, None
    if ctx.negated:
        return "absent", subject, None
    if ctx.historical and not (ctx.when is None and _ILLNESS_HISTORY.search(sentence)):
        return "historical", subject, ctx.when
    if ctx.possible:
        return "possible", subject, None
    return "present", subject, None


_NEG_WORD = re.compile(r"\b(?:not|no|non|cant|can ?not|cannot|dont|doesnt|didnt|isnt|wont|havent|hasnt|arent|couldnt|"
                       r"never|unable|nothing|without)\b|n'?t\b")


def _plain(s: str) -> str:
    return s.lower().replace("\u2019", "'").replace("'", "")


def _negation_is_the_finding(m: Match, ctx, bank) -> bool:
    """A concept whose own pattern says the negation ("haven't felt the baby move", "spots don't fade", "not
    breathing") is a positive finding: its negation cues inside the matched words do not deny it; only a cue
    outside them does."""
    rx = bank.self_negating.get(m.concept)
    if m.method != "rule" or rx is None or not rx.match(normalise(m.text, bank.spelling)[0]):
        return False
    neg_cues = [c for c in ctx.cues if _NEG_WORD.search(_plain(c))]
    return bool(neg_cues) and all(_plain(c) in _plain(m.text) for c in neg_cues)


def _sentence_of(spans: list[tuple[int, int]], pos: int) -> tuple[int, int]:
    for s, e in spans:
        if s <= pos < e:
            return s, e
    return (0, 0)


def _analyse(text: str, turn: int, carer_referent: str | None, now: datetime, semantic: bool) -> Findings:
    from chatdoc.clinical.context import context_of
    from chatdoc.clinical.numbers import find_quantities

    from chatdoc.config import get_settings

    t0 = time.perf_counter()
    bank = get_bank()
    matches: list[Match] = bank.match(text)
    if semantic and (sem := get_semantic()) is not None:
        thr = get_settings().safety.semantic_threshold
        for m in sem.match(text, thr):
            if not any(o.concept == m.concept and m.start <= o.start and o.end <= m.end for o in matches):
                matches.append(m)
    quantities = [q for q in find_quantities(text, now=now)]
    ctxs = context_of(text, [(m.start, m.end) for m in matches] + [(q.start, q.end) for q in quantities])
    sents = sentences(text)
    items: list[Finding] = []
    for m, ctx in zip(matches, ctxs[:len(matches)], strict=True):
        c = bank.concept(m.concept)
        if ctx.negated and _negation_is_the_finding(m, ctx, bank):
            ctx = replace(ctx, negated=False)
        s0, s1 = _sentence_of(sents, m.start)
        assertion, subject, when = _assertion(ctx, carer_referent, text[s0:s1], m.concept)
        if assertion in ("present", "possible") and c.symptom and _ALLERGY.search(text[s0:s1]) \
                and not _ALLERGY.search(m.text) and not _NOW.search(text[s0:s1]):
            assertion, when = "historical", "allergy reaction"  # "allergic to penicillin, I get a rash"
        items.append(Finding(
            concept=m.concept, label=c.label, hpo=c.hpo, kind=c.kind if c.symptom or c.kind != "symptom" else "modifier",
            assertion=assertion,
            when=when, subject=subject, turn=turn, start=m.start, end=m.end, evidence=m.text, method=m.method,
            score=m.score, cues=list(ctx.cues)))
    for q, ctx in zip(quantities, ctxs[len(matches):], strict=True):
        s0, s1 = _sentence_of(sents, q.start)
        assertion, subject, when = _assertion(ctx, carer_referent, text[s0:s1])
        attrs = Attributes(value=q.value, value2=q.value2, unit=q.unit)
        if q.kind in _VITAL_CONCEPT:
            cid = _VITAL_CONCEPT[q.kind]
            items.append(Finding(concept=cid, label=_VITAL_LABEL[cid], kind="vital", assertion=assertion, when=when,
                                 subject=subject, turn=turn, start=q.start, end=q.end, evidence=q.text, method="number",
                                 cues=list(ctx.cues), attributes=attrs))
        elif q.kind == "age":
            items.append(Finding(concept="age", label="age", kind="age", assertion="present", subject=subject, turn=turn,
                                 start=q.start, end=q.end, evidence=q.text, method="number", attributes=attrs))
        elif q.kind == "gestation" and _BIRTH_BEFORE.search(text[s0:q.start]):
            # "born at 33 weeks", "premature birth at 32 weeks": the patient's own birth, not a pregnancy
            items.append(Finding(concept="birth_gestation", label="gestation at birth", kind="gestation",
                                 assertion="historical", when="at birth", subject=subject, turn=turn, start=q.start,
                                 end=q.end, evidence=q.text, method="number", attributes=attrs))
        elif q.kind == "gestation":
            items.append(Finding(concept="pregnant", label="pregnant", kind="gestation", assertion=assertion,
                                 subject=subject, turn=turn, start=q.start, end=q.end, evidence=q.text, method="number",
                                 attributes=attrs))
    # attributes (SOCRATES: chatdoc.clinical.attributes) describe the symptoms of their sentence; the numbers add
    # their normalised values (hours, a 0-10 score) and fill what the attribute reader did not name
    by_sentence: dict[tuple[int, int], Attributes] = {}
    for f in items:
        if f.kind == "symptom" and f.assertion in ("present", "possible", "historical"):
            s0, s1 = _sentence_of(sents, f.start)
            if (s0, s1) not in by_sentence:
                by_sentence[(s0, s1)] = read_attributes(text[s0:s1])
            f.attributes = by_sentence[(s0, s1)].model_copy()
    for q in quantities:
        if q.kind not in ("duration", "onset", "severity"):
            continue
        s0, s1 = _sentence_of(sents, q.start)
        for f in items:
            if f.kind == "symptom" and s0 <= f.start < s1 and f.assertion in ("present", "possible", "historical"):
                a = f.attributes
                if q.kind == "duration" and a.duration_hours is None:
                    a.duration = a.duration or q.text
                    a.duration_hours = q.value
                elif q.kind == "onset" and a.onset_hours_ago is None:
                    a.onset = a.onset or q.text
                    a.onset_hours_ago = q.value
                elif q.kind == "severity" and a.severity_score is None:
                    a.severity = a.severity or q.text
                    a.severity_score = q.value
    questions = [text[s:e].strip() for s, e in sents if text[s:e].rstrip().endswith("?") or _QUESTION.match(text[s:e])]
    return Findings(turn=turn, text=text, items=items, attributes=read_attributes(text),
                    is_question=bool(questions), questions=questions,
                    correction=bool(_CORRECTION.search(text)), speaker="carer" if carer_referent else "patient",
                    ms=round((time.perf_counter() - t0) * 1000, 2))


_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()


def analyse_turn(text: str, turn: int = 0, *, carer_referent: str | None = None, now: datetime | None = None,
                 semantic: bool = True) -> Findings:
    """The findings of one patient turn (cached per text, turn, referent and hour: a growing record only
    analyses its new turn)."""
    now = now or datetime.now()
    key = (text, turn, carer_referent, now.strftime("%Y%m%d%H"), semantic)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    res = _analyse(text or "", turn, carer_referent, now, semantic)
    with _CACHE_LOCK:
        _CACHE[key] = res
        while len(_CACHE) > 4096:
            _CACHE.popitem(last=False)
    return res


def carer_referent(text: str) -> str | None:
    """The person a carer's opening message is about ("my son ..." -> "son"), or None when the speaker talks
    about themself."""
    m = _CARER_OPENING.search(text or "")
    if not m:
        return None
    who = (m.group(1) or "child").lower()
    before = (text or "")[:m.start()]
    if _FIRST_PERSON_SYMPTOM.search(before):
        return None  # "I have a cough, my mum had asthma": the speaker is the patient
    return who


def analyse_record(turns: list[str], *, now: datetime | None = None, speaker: str | None = None,
                   semantic: bool = True) -> list[Findings]:
    """Every turn's findings, in order, with the carer's referent carried from the opening and corrections
    applied (earlier findings of a corrected concept get ``superseded_by``)."""
    referent = None
    if speaker != "patient" and turns:
        referent = carer_referent(turns[0]) or (carer_referent(turns[1]) if len(turns) > 1 and speaker == "carer" else None)
        if speaker == "carer" and referent is None:
            referent = "child"
    out: list[Findings] = []
    for i, t in enumerate(turns):
        f = analyse_turn(t, i, carer_referent=referent, now=now, semantic=semantic)
        if f.correction and out:
            corrected = {x.concept for x in f.items}
            out = [_supersede(p, corrected, i) for p in out]
        out.append(f)
    return out


def _supersede(prev: Findings, concepts: set[str], turn: int) -> Findings:
    if not any(x.concept in concepts and x.superseded_by is None for x in prev.items):
        return prev
    items = [x.model_copy(update={"superseded_by": turn}) if x.concept in concepts and x.superseded_by is None else x
             for x in prev.items]
    return prev.model_copy(update={"items": items})
