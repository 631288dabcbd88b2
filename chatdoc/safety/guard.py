"""Output guard: every model output is checked before the patient sees it.

``guard_output`` returns a :class:`GuardVerdict`; reasons are stable codes:
``empty``, ``human_claim``, ``diagnosis``, ``prescription_dose``, ``drug_dose``, ``discourages_care``,
``system_leak``, ``repetitive``, ``off_topic``. ``guarded`` wraps a generator: block and regenerate once,
then fall back to a safe template.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel

from chatdoc.log import logger

DATA = Path(__file__).with_name("data") / "guard.yaml"


class GuardVerdict(BaseModel):
    ok: bool
    reasons: list[str] = []


class GuardedText(BaseModel):
    text: str
    ok: bool  # True when a model output passed; False when the safe template was used
    fallback: bool
    attempts: int
    reasons: list[str] = []  # reasons the blocked attempts failed


@lru_cache(maxsize=1)
def _lists() -> dict[str, list[str]]:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    d = _lists()
    rx_drug = _alt(d["prescription_drugs"])
    drug_suffix = r"[a-z]+(?:cillin|mycin|cycline|floxacin|pril|sartan|olol|statin|azole|prazole|pam|lam|oxetine|" \
                  r"triptan|mab|tinib|dipine|parin|xaban|gliptin|gliflozin|glutide)"
    any_drug = rf"(?:{rx_drug}|{_alt(d['otc_drugs'])}|{drug_suffix})"
    dose = r"\d+(?:\.\d+)?\s*(?:mg|mcg|µg|micrograms?|milligrams?|g|grams?|ml|millilitres?|units?|iu)\b"
    count = r"(?:\d+|one|two|three|four|half a|a)\s+(?:tablets?|pills?|capsules?|puffs?|doses?|sachets?|spoonfuls?|teaspoons?)"
    sched = r"(?:once|twice|three times|four times|\d+ times)\s+(?:a|per|each)\s+day|(?:daily|every \d+ hours|bd|tds|qds|od)\b"
    cond = _alt(d["conditions"])
    return {
        "human_claim": re.compile(
            r"\b(?:i am|i'm|im)\s+(?:a |an |your )?(?:real |human |actual |qualified |licensed |registered )?"
            r"(?:doctor|physician|gp|nurse|human|person|real person|medical professional|clinician|surgeon)\b"
            r"|\bas (?:a|your) (?:doctor|physician|gp|nurse|clinician)\b|\bspeaking as a (?:doctor|physician|nurse)\b"
            r"|\bi'?m not an? (?:ai|bot|robot|computer|machine|language model)\b|\bin my (?:clinical|medical) (?:practice|experience)\b",
            re.I),
        "diagnosis": re.compile(
            rf"\byou (?:definitely |clearly |certainly |obviously |most likely |probably )?(?:have|'ve got|have got|are having)\s+(?:got\s+)?(?:{cond})\b"
            r"|\byou(?:'re| are) suffering from\b|\b(?:this|it|that)(?: is|'s) (?:definitely|certainly|clearly|obviously|100%|without (?:a )?doubt)\b"
            r"|\bthe diagnosis is\b|\bi (?:can )?(?:diagnose|confirm) (?:you|that you|this as)\b|\byour diagnosis is\b"
            rf"|\byou(?:'re| are) (?:definitely |clearly )?(?:diabetic|asthmatic|epileptic|anaemic|depressed)\b",
            re.I),
        "prescription_dose": re.compile(
            rf"\b(?:{rx_drug})\b[^.\n]{{0,40}}?(?:{dose}|{count}|{sched})|(?:{dose}|{count})\s+(?:of\s+)?(?:{rx_drug})\b",
            re.I),
        "drug_dose": re.compile(rf"\b{any_drug}\b\s*(?:\(|,|-)?\s*{dose}|{dose}\s+(?:of\s+)?{any_drug}\b", re.I),
        "discourages_care": re.compile(
            r"\bno need (?:to|for) (?:see|visit|call|contact|go|worry|a doctor|medical)|\bnothing (?:serious|to worry about)\b"
            r"|\b(?:don'?t|do not|no need to) (?:worry|panic|be alarmed)\b|\bnot (?:an? )?emergency\b|\b(?:wait|let's wait) and see\b"
            r"|\byou (?:don'?t|do not) need (?:to see |to call |to go to )?(?:a |an |the )?(?:doctor|gp|hospital|a&e|ambulance|medical)"
            r"|\bsleep it off\b|\bit can wait\b|\bjust (?:rest|relax)\b|\bit(?:'s| is) probably (?:fine|nothing)\b|\bit will (?:pass|go away)\b",
            re.I),
        "leak_phrase": re.compile(r"\b(?:my|the) (?:system prompt|instructions (?:say|are)|hidden instructions|initial prompt)\b", re.I),
        "code": re.compile(
            r"```|\bdef \w+\(|\bimport \w+|\bfunction\s*\w*\s*\(|\bclass \w+[:(]|#include|<\/?(?:div|html|script|body)\b|"
            r"\bconsole\.log\b|\bprint\(|;\s*$|\bSELECT .+ FROM\b|\bpublic static\b",
            re.I | re.M),
        "recipe": re.compile(
            r"\b(?:preheat (?:the )?oven|ingredients:|tablespoons?|tbsp|teaspoons? of (?:sugar|salt|flour)|cups? of flour|bake for|"
            r"stir in|simmer for|once upon a time|verse \d|chorus|roses are red|stock (?:price|market)|the weather (?:today|forecast))\b",
            re.I),
    }


_MEDICAL = re.compile(
    r"\b(?:symptoms?|pain|ache|hurt|fever|temperature|doctor|gp|nurse|clinic|hospital|a&e|emergency|999|111|911|"
    r"medic\w*|health|feel\w*|unwell|ill|sick|breath\w*|chest|head|stomach|tummy|rash|cough|throat|blood|"
    r"pharmacist|treatment|appointment|care|rest|fluids|paracetamol|ibuprofen|when did|how long|started|"
    r"worse|better|better|sorry|tell me|describe|any other|safety|safe|advice|see someone|seen|urgent|"
    r"condition|infection|injur\w*|swelling|bleed\w*|dizz\w*|sleep|mood|body|skin|eye|ear|back|leg|arm)\b",
    re.I,
)
_WORD = re.compile(r"[a-z0-9']+", re.I)


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def _leaks(text: str, system_text: str, n: int = 8) -> bool:
    if not system_text.strip():
        return False
    sys_grams = set(_ngrams(_tokens(system_text), n))
    return any(g in sys_grams for g in _ngrams(_tokens(text), n))


def _repetitive(text: str, recent: Iterable[str]) -> bool:
    toks = _tokens(text)
    norm = " ".join(toks)
    for r in recent:
        rt = _tokens(r)
        if norm and norm == " ".join(rt):
            return True
        if len(toks) >= 8 and rt:
            a, b = set(_ngrams(toks, 3)), set(_ngrams(rt, 3))
            if a and len(a & b) / len(a | b) >= 0.8:
                return True
    if len(toks) >= 4 and max(Counter(toks).values()) >= max(4, len(toks) // 2) and len(set(toks)) <= len(toks) // 3:
        return True
    for n in (3, 4, 5):
        grams = _ngrams(toks, n)
        if grams and Counter(grams).most_common(1)[0][1] >= 3:
            return True
    return False


def _off_topic(text: str) -> bool:
    p = _patterns()
    if p["code"].search(text) or p["recipe"].search(text):
        return len(_MEDICAL.findall(text)) < 2
    toks = _tokens(text)
    return len(toks) >= 30 and not _MEDICAL.search(text)


def guard_output(text: str, *, system_text: str = "", red_flag_present: bool = False,
                 recent_outputs: Iterable[str] = ()) -> GuardVerdict:
    """Check one model output. ``red_flag_present``: the triage found a red flag (emergency/urgent)."""
    reasons: list[str] = []
    t = text or ""
    if len(re.sub(r"[\W_]+", "", t)) < 2:
        return GuardVerdict(ok=False, reasons=["empty"])
    p = _patterns()
    if p["human_claim"].search(t):
        reasons.append("human_claim")
    if p["diagnosis"].search(t):
        reasons.append("diagnosis")
    if p["prescription_dose"].search(t):
        reasons.append("prescription_dose")
    elif p["drug_dose"].search(t):
        reasons.append("drug_dose")
    if red_flag_present and p["discourages_care"].search(t):
        reasons.append("discourages_care")
    if _leaks(t, system_text) or p["leak_phrase"].search(t):
        reasons.append("system_leak")
    if _repetitive(t, recent_outputs):
        reasons.append("repetitive")
    if _off_topic(t):
        reasons.append("off_topic")
    return GuardVerdict(ok=not reasons, reasons=reasons)


def safe_template(kind: str = "generic", *, locale: str | None = None, result=None, question: str | None = None) -> str:
    """Fallback wording that never needs the model.

    kinds: ``generic`` (ask the patient to go on), ``question`` (ask ``question``), ``emergency``,
    ``crisis``, ``urgent``, ``routine``, ``self_care`` (level advice with safety-netting).
    """
    from chatdoc.texts import text
    from chatdoc.safety.crisis import crisis_message, emergency_instruction, lines_for

    if kind == "emergency" or (result is not None and getattr(result, "level", None) == "emergency" and kind == "generic"):
        return emergency_instruction(result, locale)
    if kind == "crisis":
        return crisis_message(locale, getattr(result, "crisis_kind", None) if result is not None else None)
    if kind == "question" and question:
        return text("safety.question", question=question)
    if kind in ("urgent", "routine", "self_care"):
        ll = lines_for(locale)
        numbers = {"emergency_number": ll.emergency_number, "urgent_service": ll.urgent_service}
        return text(f"level.{kind}.advice", safety_net=text("safety.safety_net", **numbers), **numbers)
    return text("safety.generic")


def guarded(generate_fn: Callable[[], str], *, system_text: str = "", red_flag_present: bool = False,
            recent_outputs: Iterable[str] = (), fallback_kind: str = "generic", locale: str | None = None,
            result=None, question: str | None = None, max_attempts: int = 2) -> GuardedText:
    """Generate, guard, regenerate once if blocked, then fall back to :func:`safe_template`."""
    recent = list(recent_outputs)
    reasons: list[str] = []
    for attempt in range(1, max_attempts + 1):
        try:
            text = generate_fn()
        except Exception as e:  # a failing model must not reach the patient as a traceback
            logger.warning("guarded generation failed: {}", type(e).__name__)
            reasons.append("error")
            continue
        v = guard_output(text, system_text=system_text, red_flag_present=red_flag_present, recent_outputs=recent)
        if v.ok:
            return GuardedText(text=text, ok=True, fallback=False, attempts=attempt, reasons=reasons)
        logger.info("output guard blocked attempt {}: {}", attempt, ",".join(v.reasons))
        reasons.extend(v.reasons)
    text = safe_template(fallback_kind, locale=locale, result=result, question=question)
    return GuardedText(text=text, ok=False, fallback=True, attempts=max_attempts, reasons=reasons)
