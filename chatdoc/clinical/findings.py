"""The typed result of analysing patient turns: :class:`Finding` and :class:`Findings`.

One analysis per patient turn (:func:`chatdoc.clinical.analyse_turn`) produces a ``Findings``; triage, history
tracking, the question policy and the staff summary all read these (no second matcher anywhere). A finding is a
canonical concept (an HPO id where the Human Phenotype Ontology covers it, else the rule file's own id) with its
evidence span in its turn, an assertion, attributes and who it is about.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Assertion = Literal["present", "absent", "possible", "historical", "hypothetical", "family", "other_person", "asked_about"]
ASSERTIONS: tuple[Assertion, ...] = ("present", "absent", "possible", "historical", "hypothetical", "family",
                                     "other_person", "asked_about")
#: findings that describe the patient now: triage and the current symptoms read only these
CURRENT: frozenset[str] = frozenset({"present", "possible"})
Kind = Literal["symptom", "condition", "medication", "allergy", "vital", "age", "gestation", "modifier", "intent"]
Subject = Literal["patient", "speaker"]
Method = Literal["rule", "hpo", "semantic", "number", "answer"]


class Attributes(BaseModel):
    model_config = {"extra": "forbid"}
    onset: str | None = None
    onset_hours_ago: float | None = None
    onset_speed: str | None = None  # "suddenly", "gradually"
    duration: str | None = None
    duration_hours: float | None = None
    severity: str | None = None  # as said: "7/10", "severe"
    severity_score: float | None = None  # 0-10 when a score was given
    site: str | None = None
    laterality: str | None = None
    character: str | None = None
    radiation: str | None = None
    radiation_denied: bool | None = None  # "it doesn't spread anywhere"
    timing: str | None = None
    aggravating: str | None = None
    relieving: str | None = None
    value: float | None = None
    value2: float | None = None
    unit: str | None = None
    reaction: str | None = None  # an allergy's reaction ("rash"): never a current symptom

    def given(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Finding(BaseModel):
    concept: str  # the rule file's concept id (or a vital's name: temp_c, heart_rate, ...)
    label: str  # human-readable name for staff
    hpo: str | None = None  # HP:xxxxxxx when the concept maps to a Human Phenotype Ontology term
    kind: Kind = "symptom"
    assertion: Assertion = "present"
    when: str | None = None  # for historical findings: the time cue ("10 years ago")
    subject: Subject = "patient"
    turn: int = 0
    start: int = 0  # evidence span in the (redacted) turn text
    end: int = 0
    evidence: str = ""
    method: Method = "rule"
    score: float | None = None  # semantic similarity for method="semantic"
    cues: list[str] = []  # the context cues that set the assertion
    attributes: Attributes = Field(default_factory=Attributes)
    superseded_by: int | None = None  # turn of a later correction that replaced this finding

    @property
    def current(self) -> bool:
        """About the patient, now (present or possible), and not replaced by a correction."""
        return self.assertion in CURRENT and self.subject == "patient" and self.superseded_by is None


class Findings(BaseModel):
    """Everything one patient turn says, as typed findings."""

    turn: int = 0
    text: str = ""
    items: list[Finding] = []
    is_question: bool = False  # the turn asks something
    questions: list[str] = []  # the patient's questions (sentences), for the summary's concerns
    # the symptom attributes the whole turn gives (chatdoc.clinical.attributes), for an answer that names no
    # symptom ("about two weeks", "it's worse at night"); each symptom finding carries those of its sentence
    attributes: Attributes = Field(default_factory=Attributes)
    correction: bool = False  # "sorry, I meant ...", "actually ..."
    speaker: Literal["patient", "carer"] = "patient"
    ms: float = 0.0

    def current(self, concept: str | None = None) -> list[Finding]:
        return [f for f in self.items if f.current and (concept is None or f.concept == concept)]

    def concepts(self, assertion: str | None = None) -> set[str]:
        return {f.concept for f in self.items if assertion is None or f.assertion == assertion}
