"""External transcripts -> the same extraction and summary code as live consultations.

Accepts ``Doctor:`` / ``Patient:`` lines (MTS-Dialog; also ``Guest_family:``/``Guest_clinician:``) or
``[doctor]`` / ``[patient]`` tags (ACI-BENCH). The doctor's question before a patient line gives the slot
context, so a bare "no" to "any fever?" becomes a pertinent negative. The text is redacted first.
"""

from __future__ import annotations

import re
from typing import Any

from chatdoc.dialogue.extract import extract_turn, find_concepts
from chatdoc.dialogue.questions import all_items, choose_set
from chatdoc.dialogue.state import ConsultationState, empty_history

_ROLE = re.compile(r"^\s*(?:\[(doctor|patient|patient_guest|guest_family|guest_clinician)\]|"
                   r"(doctor|dr|patient|pt|guest_family|guest_clinician|clinician|nurse)\s*:)\s*", re.I)


class TranscriptError(ValueError):
    pass


def parse(text: str) -> list[tuple[str, str]]:
    """[(role, text)] with role in {"doctor", "patient"}; continuation lines join the previous turn."""
    turns: list[tuple[str, str]] = []
    for line in text.replace("\r", "").split("\n"):
        if not line.strip():
            continue
        m = _ROLE.match(line)
        if m:
            tag = (m.group(1) or m.group(2)).lower()
            role = "doctor" if tag in ("doctor", "dr", "guest_clinician", "clinician", "nurse") else "patient"
            turns.append((role, line[m.end():].strip()))
        elif turns:
            turns[-1] = (turns[-1][0], turns[-1][1] + " " + line.strip())
    if not any(r == "patient" for r, _ in turns):
        raise TranscriptError("no patient turns found: use 'Doctor:'/'Patient:' lines or [doctor]/[patient] tags")
    return turns


_BACKGROUND = ("pmh", "medications", "allergies", "family_history", "social.smoking", "social.alcohol", "social.drugs")


def slot_for_question(question: str) -> str | None:
    """The slot a doctor's question targets: a symptom it names, else a background item by its keywords.

    Deliberately conservative (someone else's question wording): no symptom slot is guessed from keywords."""
    q = question.lower()
    concepts = [h.concept for h in find_concepts(question, any_assertion=True) if not h.negated]
    if concepts:
        return f"ros.{concepts[0]}"
    best, score = None, 0
    for it in all_items():
        if it.slot not in _BACKGROUND:
            continue
        sc = sum(1 for k in it.keywords if k and k in q)
        if sc > score:
            best, score = it.slot, sc
    return best


_FILLER = re.compile(r"^(?:yes|yeah|yep|no|nope|okay|ok|mm-?hmm|uh-?huh|right|sure|thank you|thanks|alright|hi|hello)\b[\s,.!]*$", re.I)


def narrative(patient_turns: list[str], max_words: int = 250) -> str:
    """Extractive HPI narrative: the patient's own substantive sentences (redacted, lightly put in the third
    person), in order, deduplicated and capped. Nothing is added that the patient did not say."""
    from chatdoc.dialogue.extract import split_untrusted, third_person

    out, seen, n = [], set(), 0
    for turn in patient_turns:
        own, _ = split_untrusted(turn)  # other speakers' lines and instructions typed by the patient are not statements
        for sent in re.split(r"(?<=[.!?])\s+", own):
            sent = sent.strip()
            if len(sent.split()) < 4 or _FILLER.match(sent):
                continue
            t = third_person(sent)
            key = t.lower()
            if not t or key in seen:
                continue
            seen.add(key)
            out.append(t)
            n += len(t.split())
            if n >= max_words:
                return ". ".join(out) + "."
    return ". ".join(out) + ("." if out else "")


def summarize_transcript(text: str) -> dict[str, Any]:
    from chatdoc.dialogue.summary import build_summary
    from chatdoc.privacy import PlaceholderState, get_redactor

    turns = parse(text)
    red = get_redactor()
    pstate = PlaceholderState.new()
    hist, prof = empty_history(), {}
    messages = []
    last_q: str | None = None
    for role, t in turns:
        r = red.redact(t, pstate)
        pstate = r.state
        messages.append({"role": role, "text": r.text})
        if role == "doctor":
            last_q = r.text if "?" in r.text else None
            continue
        slot = slot_for_question(last_q) if last_q else None
        hist, prof, _ = extract_turn(hist, prof, r.text, last_slot=slot, question=last_q, is_first=False,
                                     free_text=False)
        last_q = None
    if not hist.get("narrative"):
        hist["narrative"] = narrative([m["text"] for m in messages if m["role"] == "patient"])
    if hist.get("chief_complaint"):
        hist["complaint_set"] = choose_set(" ".join([hist["chief_complaint"], *hist["hpi"].get("associated", [])]))
    from chatdoc.safety import assess, red_flags

    pts = [m["text"] for m in messages if m["role"] == "patient"]
    res = assess(pts, {k: v for k, v in prof.items() if v is not None})
    state = ConsultationState(
        history=hist, profile=prof, messages=messages, question_log=[],
        triage={"level": res.level, "red_flags": red_flags(res), "crisis": res.crisis, "crisis_kind": res.crisis_kind},
    )
    return build_summary(state)
