"""Personas (``personas/*.yaml``): voice, audience, greeting and question sets, selectable per session."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError


class PersonaError(ValueError):
    pass


class Persona(BaseModel):
    model_config = {"extra": "forbid"}

    name: str
    display_name: str
    description: str = ""
    audience: str = "self"  # self | parent
    question_sets: list[str] | str = "all"
    max_questions: int | None = None
    greeting: str
    system: str

    def uses(self, set_id: str) -> bool:
        return self.question_sets == "all" or set_id in self.question_sets or set_id == "general"

    def phrase(self, question: str, child: str | None = None) -> str:
        """Template wording for this persona's audience (parents are asked about their child)."""
        if self.audience != "parent":
            return question
        return child or to_parent(question)


_PARENT_RULES = [
    (r"\bHave you\b", "Has your child"), (r"\bhave you\b", "has your child"),
    (r"\bDo you\b", "Does your child"), (r"\bdo you\b", "does your child"),
    (r"\bAre you\b", "Is your child"), (r"\bare you\b", "is your child"),
    (r"\bDid you\b", "Did your child"), (r"\bdid you\b", "did your child"),
    (r"\bHow old are you\b", "How old is your child"),
    (r"\byou've\b", "they've"), (r"\byou're\b", "they're"), (r"\byour\b", "their"), (r"\byou\b", "they"),
]


def to_parent(question: str) -> str:
    out = question
    for pat, rep in _PARENT_RULES:
        out = re.sub(pat, rep, out)
    return out.replace("their child", "your child")


def _dir() -> Path:
    from chatdoc.config import get_settings

    s = get_settings()
    return s.path(s.dialogue.personas_dir)


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Persona]:
    out: dict[str, Persona] = {}
    for f in sorted(Path(path).glob("*.yaml")):
        try:
            p = Persona.model_validate(yaml.safe_load(f.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as e:
            raise PersonaError(f"persona file {f.name} is invalid: {str(e).splitlines()[0]}") from None
        out[p.name] = p
    if not out:
        raise PersonaError(f"no personas found in {path}")
    return out


def list_personas() -> list[Persona]:
    return list(_load(str(_dir())).values())


def get_persona(name: str | None = None) -> Persona:
    from chatdoc.config import get_settings

    all_ = _load(str(_dir()))
    key = name or get_settings().dialogue.default_persona
    if key not in all_:
        raise PersonaError(f"unknown persona {key!r}; available: {', '.join(sorted(all_))}")
    return all_[key]
