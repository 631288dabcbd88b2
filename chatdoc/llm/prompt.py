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


def _clean(text: str) -> str:
    # A turn is one block: collapse stray role labels so patient text cannot fake a doctor turn.
    text = text.replace("\r", "").strip()
    for label in ROLE_LABEL.values():
        text = text.replace(f"\n{label}:", f"\n{label} said:")
    return text


def render_turn(turn: Turn) -> str:
    return f"{ROLE_LABEL[turn.role]}: {_clean(turn.text)}\n"


def render(system: str, turns: Sequence[Turn], next_role: Role = "doctor") -> str:
    """Full prompt ending with ``'<Next role>:'`` so the model writes that role's turn."""
    head = system.strip() + "\n\n" if system.strip() else ""
    body = "".join(render_turn(t) for t in turns)
    return f"{head}{body}{ROLE_LABEL[next_role]}:"


def training_pair(system: str, history: Sequence[Turn], target: str) -> tuple[str, str]:
    """(prompt, completion) for one doctor turn: prompt exactly as at run time, completion = ' text\\n'."""
    return render(system, history, "doctor"), " " + _clean(target) + "\n"


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
    msgs += [{"role": "user" if t.role == "patient" else "assistant", "content": t.text} for t in turns]
    return msgs
