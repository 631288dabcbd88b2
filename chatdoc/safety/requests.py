"""Patient text is data, never instructions: detect prompt injection and out-of-scope requests.

``classify_request`` never changes triage; callers still run :func:`chatdoc.safety.assess` on the text.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

Kind = Literal["ok", "injection", "prescription", "controlled_drug", "non_medical"]

_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b(?:\s+\w+){0,3}\s+(?:rules|instructions|prompts?|guidelines|"
    r"directions|programming|restrictions|guardrails|safety)\b"
    r"|\byou are now\b|\bfrom now on,? you(?: are|'re| will| must)\b|\bsystem prompt\b|\bdeveloper mode\b|\bjailbreak\w*\b"
    r"|\bpretend (?:to be|you(?:'re| are))\b|\bact as (?:a|an|my|if)\b|\brole-?play as\b|\bdo anything now\b|\bDAN\b"
    r"|\b(?:reveal|show|print|repeat|tell me) (?:me )?(?:your|the) (?:hidden |initial |original )?(?:prompt|instructions|rules|system message)\b"
    r"|\bwhat (?:are|were) your (?:instructions|rules)\b|\bnew instructions?:|<\s*/?\s*system\s*>|\[\s*system\s*\]",
    re.I,
)
_PRESCRIPTION = re.compile(
    r"\b(?:write|give|send|issue|get) (?:me )?(?:a |an )?(?:new |repeat )?(?:prescription|script|rx)\b"
    r"|\b(?:can|could|will|would) you (?:please )?prescribe\b|\bprescribe (?:me|my)\b|\bprescription for\b"
    r"|\bsign (?:a|my) (?:prescription|sick note|fit note)\b",
    re.I,
)
_CONTROLLED = re.compile(
    r"\b(?:get|buy|give me|need|want|prescribe|order|score|more|extra|how (?:much|many)|where can i (?:get|buy))\b"
    r"(?:\s+\w+){0,4}\s+(?:oxycodone|oxycontin|morphine|fentanyl|diazepam|valium|xanax|alprazolam|adderall|ritalin|"
    r"methylphenidate|codeine|tramadol|ketamine|methadone|buprenorphine|subutex|zopiclone|zolpidem|pregabalin|"
    r"gabapentin|lorazepam|clonazepam|temazepam|hydrocodone|vicodin|percocet|dihydrocodeine|benzos?|opioids?|opiates?)\b",
    re.I,
)
_NON_MEDICAL = re.compile(
    r"\b(?:write|compose|generate|create|make) (?:me )?(?:a |an |some )?(?:poem|story|essay|song|code|program|script|"
    r"function|email|joke|haiku|limerick|cover letter|blog post|rap)\b"
    r"|\b(?:python|javascript|java|sql|html|c\+\+|rust) (?:code|script|program|function)\b|\bhomework\b|\brecipe for\b"
    r"|\btranslate (?:this|that|the following)\b|\bwhat(?:'s| is) the weather\b|\bstock (?:price|tips)\b|\bwho won the\b"
    r"|\bsolve (?:this|the) (?:equation|maths?|math)\b",
    re.I,
)


class RequestClass(BaseModel):
    kind: Kind = "ok"
    injection: bool = False
    out_of_scope: Kind | None = None  # prescription, controlled_drug or non_medical
    matched: list[str] = []  # kinds that matched, most important first

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def classify_request(text: str) -> RequestClass:
    t = text or ""
    matched: list[Kind] = []
    if _INJECTION.search(t):
        matched.append("injection")
    if _CONTROLLED.search(t):
        matched.append("controlled_drug")
    if _PRESCRIPTION.search(t):
        matched.append("prescription")
    if _NON_MEDICAL.search(t):
        matched.append("non_medical")
    scope = next((k for k in matched if k != "injection"), None)
    return RequestClass(kind=matched[0] if matched else "ok", injection="injection" in matched,
                        out_of_scope=scope, matched=list(matched))


def refusal_message(kind: str) -> str:
    """Polite refusal with a redirect back to the consultation (wording: ``safety.refusal`` in configs/texts.yaml)."""
    from chatdoc.texts import has_text, text

    key = f"safety.refusal.{kind}"
    return text(key if has_text(key) else "safety.refusal.non_medical")
