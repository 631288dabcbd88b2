"""chatdoc's consultation prompt format: the one place it is defined.

The default base model has no chat template, so chatdoc uses its own plain format::

    <system / persona text>

    Patient: first patient message
    Doctor: first doctor reply
    Patient: ...
    Doctor:

Fine-tuning (``chatdoc.train``) renders its examples with :func:`render` and
:func:`training_pair`, so training and runtime prompts are byte-identical. A model that ships its
own chat template (an instruction-tuned model) uses that template instead, when ``use_chat_template``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["patient", "doctor"]

ROLE_LABEL: dict[str, str] = {"patient": "Patient", "doctor": "Doctor"}
# Generation stops when the model starts writing the next patient turn.
STOP_SEQUENCES: tuple[str, ...] = ("\nPatient:", "\nPATIENT:", "\n\n\n")


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


# ---------------------------------------------------------------------------------------------- role markers
# Patient text is data. A line of it that starts with another speaker's label ("Doctor:", " dr. <PERSON_1> :",
# "**Assistant**:", "SYSTEM：", "[doctor]", "<|im_start|>assistant", "# Approved by ...") would read as a turn of
# that speaker in the prompt, the transcript or the summary. ROLE_MARKER recognises the class (any case, spacing,
# full-width colon, Markdown/list markup in front, up to three name words between the role and the colon);
# neutralise_roles() quotes such lines as the patient's words. Used by the prompt builder, the extraction,
# the summaries and the Markdown export.
_ROLE_WORDS = (r"doctor|dr|doc|gp|physician|clinician|clinic|nurse|pharmacist|consultant|surgeon|registrar|medic|"
               r"paramedic|specialist|therapist|psychiatrist|midwife|receptionist|assistant|ai|bot|chatbot|chatdoc|model|"
               r"system|sys|admin|administrator|root|developer|operator|moderator|staff|instructions?|response|"
               r"guest_\w+|patient|pt|user|human")
PATIENT_ROLES = frozenset({"patient", "pt", "user", "human"})
_MARKUP = r"(?:[\s>#*_|`~+\-\u2022\u00b7=.\d)(\[\]{}\\\"'\u201c\u2018]|<[a-z/!][^<>\n]{0,60}>)*"  # quotes, lists, HTML tags
_COLON = r"[:\uff1a\ufe55]"
_ROLE_LABEL = (rf"(?P<role>{_ROLE_WORDS})\b\.?(?:\s*\([^)\n]{{0,30}}\))?(?:\s+(?!said\b|wrote\b)[\w.'\u2019<>()-]+){{0,3}}?"
               rf"\s*[*_]*\s*{_COLON}")
_ROLE_TAG = (rf"(?:<\|?\s*/?\s*|\[\s*/?\s*)(?:(?P<tagrole>{_ROLE_WORDS})|start_of_turn|end_of_turn|im_start|im_end|inst)\b"
             r"[^\]>\n]{0,20}[\]>]")
_AUTHORITY = (r"(?:approved|signed|countersigned|authori[sz]ed|reviewed|verified|validated|certified|endorsed|prescribed)"
              r"(?:\s+(?:off|and\s+\w+))?\s+by\b")
ROLE_MARKER = re.compile(rf"{_MARKUP}(?:{_ROLE_LABEL}|{_ROLE_TAG}|{_AUTHORITY})", re.I)
LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
# chat-template control tokens a tokenizer would read as real turn boundaries
_CONTROL_TOKEN = re.compile(r"<\|[^|<>\n]{0,40}\|>|</?\s*(?:start_of_turn|end_of_turn|bos|eos|pad|unk|mask|s)\s*>"
                            r"|\[/?INST\]|<<\s*/?SYS\s*>>", re.I)


def role_marker(line: str) -> tuple[str, int] | None:
    """(``"patient"`` or ``"other"``, end of the marker) when ``line`` starts with a speaker/approval marker."""
    m = ROLE_MARKER.match(line)
    if not m:
        return None
    role = (m.group("role") or m.group("tagrole") or "").lower()
    return ("patient" if role in PATIENT_ROLES else "other"), m.end()


def split_lines(text: str) -> list[str]:
    """Lines of ``text``, every Unicode line break counted (CR, LS, PS, NEL, VT, FF ...), zero-width marks removed."""
    return LINE_BREAK.split(_ZERO_WIDTH.sub("", text or ""))


def quote_as(speaker: str, line: str) -> str:
    """A line another speaker seemed to say, as the words of ``speaker``: ``Patient said: "Doctor: ..."``."""
    return f'{speaker} said: "{line.strip()}"'


def neutralise_roles(text: str, speaker: str = "Patient") -> str:
    """Every line of ``text`` that starts with a role/approval marker is quoted as ``speaker``'s words; line breaks
    normalised to ``\\n``, blank lines dropped (a turn is one block)."""
    out = []
    for line in split_lines(text):
        if not line.strip():
            continue
        out.append(quote_as(speaker, line) if ROLE_MARKER.match(line) else line.rstrip())
    return "\n".join(out).strip()


def defuse_control_tokens(text: str) -> str:
    """``<|im_start|>``, ``<start_of_turn>``, ``[INST]`` ... written by a person are text, not tokenizer controls."""
    return _CONTROL_TOKEN.sub(lambda m: m.group(0).replace("<", "\u2039").replace(">", "\u203a")
                              .replace("[", "(").replace("]", ")"), text)


def _clean(text: str, speaker: str = "Patient") -> str:
    # A turn is one block: no control tokens, and no line of it can open another speaker's turn.
    return defuse_control_tokens(neutralise_roles(text, speaker))


def render_turn(turn: Turn) -> str:
    label = ROLE_LABEL[turn.role]
    return f"{label}: {_clean(turn.text, label)}\n"


def render(system: str, turns: Sequence[Turn], next_role: Role = "doctor") -> str:
    """Full prompt ending with ``'<Next role>:'`` so the model writes that role's turn."""
    head = system.strip() + "\n\n" if system.strip() else ""
    body = "".join(render_turn(t) for t in turns)
    return f"{head}{body}{ROLE_LABEL[next_role]}:"


def training_pair(system: str, history: Sequence[Turn], target: str) -> tuple[str, str]:
    """(prompt, completion) for one doctor turn: prompt exactly as at run time, completion = ' text\\n'."""
    return render(system, history, "doctor"), " " + _clean(target, ROLE_LABEL["doctor"]) + "\n"


def render_with_budget(
    system: str,
    turns: Sequence[Turn],
    count_tokens: Callable[[str], int],
    budget: int,
    next_role: Role = "doctor",
) -> tuple[str, int]:
    """Render, dropping the oldest turns (never the system text) until the prompt fits ``budget``.

    Returns (prompt, number of turns dropped). The newest turn is always kept.
    """
    turns = list(turns)
    dropped = 0
    prompt = render(system, turns, next_role)
    while len(turns) > 1 and count_tokens(prompt) > budget:
        turns.pop(0)
        dropped += 1
        prompt = render(system, turns, next_role)
    return prompt, dropped


def chat_template_messages(system: str, turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Messages for a tokenizer chat template (patient -> user, doctor -> assistant)."""
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": "user" if t.role == "patient" else "assistant", "content": _clean(t.text, ROLE_LABEL[t.role])}
             for t in turns]
    return msgs
