"""Question sets (``configs/questions/*.yaml``): complaint-specific items plus a general fallback.

Files whose name starts with ``_`` (the lexicon) are not question sets.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

SLOT_RX = re.compile(r"^(?:hpi\.(?:onset|location|duration|character|severity|radiation|timing|aggravating|relieving|associated)"
                     r"|pmh|medications|allergies|family_history|concerns|social\.(?:smoking|alcohol|drugs|occupation)"
                     r"|profile\.(?:age|sex|pregnant)|review|ros\.[a-z0-9_]+)$")


class QuestionError(ValueError):
    pass


class Item(BaseModel):
    model_config = {"extra": "forbid"}

    slot: str
    priority: int = Field(50, ge=0, le=1000)
    triage: bool = False
    question: str
    child: str | None = None
    topic: str = ""
    keywords: list[str] = []
    core: bool = False  # part of the minimum history: the policy keeps budget to reach every core item
    pain_only: bool = False  # SOCRATES pain item: asked only when the complaint is pain
    covers: list[str] = []  # other slots this (multi-part) question also asks about: never asked again separately

    @field_validator("slot")
    @classmethod
    def _slot(cls, v: str) -> str:
        if not SLOT_RX.match(v):
            raise ValueError(f"unknown slot {v!r}")
        return v

    @field_validator("keywords", mode="before")
    @classmethod
    def _kw(cls, v):
        return [str(x).lower() for x in (v or [])]


class QuestionSet(BaseModel):
    model_config = {"extra": "forbid"}

    id: str
    title: str
    match: list[str] = []
    items: list[Item]

    def score(self, text: str) -> int:
        return sum(1 for p in self.match if re.search(p, text, re.I))


def _dir() -> Path:
    from chatdoc.config import get_settings

    s = get_settings()
    return s.path(s.dialogue.questions_dir)


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, QuestionSet]:
    out: dict[str, QuestionSet] = {}
    for f in sorted(Path(path).glob("*.yaml")):
        if f.name.startswith("_"):
            continue
        try:
            qs = QuestionSet.model_validate(yaml.safe_load(f.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as e:
            raise QuestionError(f"question set {f.name} is invalid: {str(e).splitlines()[0]}") from None
        out[qs.id] = qs
    if "general" not in out:
        raise QuestionError(f"no general question set in {path}")
    return out


def question_sets() -> dict[str, QuestionSet]:
    return _load(str(_dir()))


def choose_set(text: str, allowed=None) -> str:
    """The complaint set whose patterns match the (normalised) complaint text best; ``general`` if none."""
    best, best_score = "general", 0
    for qs in question_sets().values():
        if qs.id == "general" or (allowed is not None and not allowed(qs.id)):
            continue
        sc = qs.score(text)
        if sc > best_score:
            best, best_score = qs.id, sc
    return best


def plan(set_id: str) -> list[Item]:
    """Complaint items, then the general items not already covered (by slot)."""
    sets = question_sets()
    items: list[Item] = []
    seen: set[str] = set()
    for qs in ([sets[set_id]] if set_id in sets and set_id != "general" else []) + [sets["general"]]:
        for it in qs.items:
            if it.slot not in seen:
                seen.add(it.slot)
                items.append(it)
    return items


def all_items() -> list[Item]:
    out: dict[str, Item] = {}
    for qs in question_sets().values():
        for it in qs.items:
            out.setdefault(it.slot, it)
    return list(out.values())
