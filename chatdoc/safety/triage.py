"""Triage of a whole consultation history against the red-flag rules.

``assess(turns, profile)`` looks at every patient turn: a finding in turn 2 and another in turn 5
combine. The most urgent fired rule sets the level; when nothing fires the rule file's
``default_level`` (``routine``) applies, so ``self_care`` is only given when a self-care rule matched
and nothing more urgent did.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from chatdoc.domain import Level, RedFlag, urgency_rank
from chatdoc.log import logger
from chatdoc.clinical.analyse import analyse_record
from chatdoc.clinical.findings import Findings
from chatdoc.safety.rules import LEVELS, CrisisKind, Range, RuleSet, Trigger, get_rules


class Evidence(BaseModel):
    concept: str
    evidence: str
    turn: int
    start: int
    end: int


class FiredRule(BaseModel):
    """The rule engine's own result (with every piece of evidence); :func:`red_flags` turns it into the domain's
    :class:`~chatdoc.domain.RedFlag` that the consultation stores."""

    id: str
    level: Level
    title: str
    source: str = ""
    evidence: str  # matched text of the finding that completed the rule
    turn: int  # index of the turn holding that text
    start: int
    end: int
    concepts: list[str] = []
    all_evidence: list[Evidence] = []
    crisis: CrisisKind | None = None


class TriageResult(BaseModel):
    level: Level
    fired: list[FiredRule] = []
    crisis: bool = False
    crisis_kind: CrisisKind | None = None
    vitals: dict[str, float] = {}
    age_years: float | None = None
    pregnant: bool | None = None
    negated: list[str] = []  # concepts mentioned only in negated form ("no chest pain")
    default_used: bool = False
    #: a crisis rule fires on the latest turn by itself (as ``assess([turns[-1]]).crisis``): a NEW crisis statement
    latest_crisis: bool = False

    @property
    def rule_ids(self) -> list[str]:
        return [f.id for f in self.fired]


def combine_levels(*levels: str | None) -> Level:
    """The most urgent of the given levels (``None`` ignored); ``routine`` when none is given."""
    given = [lv for lv in levels if lv is not None]
    for lv in given:
        if lv not in LEVELS:
            raise ValueError(f"unknown triage level {lv!r}; expected one of {list(LEVELS)}")
    return min(given, key=urgency_rank) if given else "routine"  # type: ignore[return-value]


def red_flags(result: TriageResult) -> list[RedFlag]:
    """The fired rules as the domain's red flags (most urgent first), the one shape the record keeps."""
    return [RedFlag(id=f.id, title=f.title, level=f.level, evidence=f.evidence) for f in result.fired]


class _State:
    """Everything the rules can see, from the typed findings: current findings per concept, ages, vitals,
    pregnancy, sex. A finding counts when it is about the patient, present or possible, and not superseded;
    absent, historical, hypothetical, asked-about and other people's findings never fire a rule."""

    def __init__(self, record: list[Findings], profile: dict[str, Any], rs: RuleSet):
        self.present: dict[str, list[Evidence]] = {}
        seen_negated: set[str] = set()
        self.ages: list[tuple[float, Evidence | None]] = []
        self.vitals: dict[str, list[tuple[float, Evidence]]] = {}
        for turn in record:
            for f in turn.items:
                ev = Evidence(concept=f.concept, evidence=f.evidence, turn=f.turn, start=f.start, end=f.end)
                if f.kind == "age":
                    if f.subject == "patient" and f.attributes.value is not None:
                        self.ages.append((f.attributes.value, ev))
                    continue
                if f.superseded_by is not None or f.subject != "patient":
                    continue
                if f.kind == "vital":
                    if f.current and f.attributes.value is not None:
                        self.vitals.setdefault(f.concept, []).append((f.attributes.value, ev))
                    continue
                if f.current:
                    self.present.setdefault(f.concept, []).append(ev)
                elif f.assertion == "absent":
                    seen_negated.add(f.concept)
        for name, value in (profile.get("vitals") or {}).items():
            if value is not None:
                self.vitals.setdefault(name, []).append((float(value), Evidence(concept=name, evidence=f"{name}={value}", turn=-1, start=0, end=0)))
        self.profile_age = profile.get("age_years")
        if self.profile_age is not None:
            self.ages.insert(0, (float(self.profile_age), None))
        self.sex = profile.get("sex")
        for d in rs.derived:
            for name, rng in d.vitals.items():
                for value, ev in self.vitals.get(name, []):
                    if rng.holds(value) and (d.age_years is None or self.age_ok(d.age_years)):
                        self.present.setdefault(d.concept, []).append(ev.model_copy(update={"concept": d.concept}))
        self.pregnant = _pregnancy(profile.get("pregnant"), "pregnant" in self.present, "pregnant" in seen_negated)
        self.negated = sorted(seen_negated - set(self.present))

    def age_ok(self, rng: Range) -> bool:
        return any(rng.holds(a) for a, _ in self.ages)  # any candidate age (errs towards escalation)

    def holds(self, t: Trigger) -> list[Evidence] | None:
        if any(c not in self.present for c in t.all):
            return None
        anys = [c for c in t.any if c in self.present]
        if t.any and not anys:
            return None
        if any(c in self.present for c in t.none):
            return None
        if t.age_years is not None and not self.age_ok(t.age_years):
            return None
        if t.pregnant is not None and bool(self.pregnant) != t.pregnant:
            return None
        if t.sex is not None and self.sex != t.sex:
            return None
        ev: list[Evidence] = []
        for name, rng in t.vitals.items():
            hits = [e for v, e in self.vitals.get(name, []) if rng.holds(v)]
            if not hits:
                return None
            ev.append(hits[-1])
        for c in [*t.all, *anys]:
            ev.append(self.present[c][-1])
        return ev

    def vitals_latest(self) -> dict[str, float]:
        return {k: v[-1][0] for k, v in self.vitals.items() if v}

    def age_years(self) -> float | None:
        if self.profile_age is not None:
            return float(self.profile_age)
        return self.ages[0][0] if self.ages else None


def _pregnancy(profile_value: Any, said: bool, denied: bool) -> bool | None:
    if profile_value is True or said:
        return True
    if profile_value is False or denied:
        return False
    return None


# NEWS2 (Royal College of Physicians, 2017), scale 1: (upper bound inclusive, points) per parameter, in order
_NEWS2: dict[str, list[tuple[float, int]]] = {
    "resp_rate": [(8, 3), (11, 1), (20, 0), (24, 2), (999, 3)],
    "spo2": [(91, 3), (93, 2), (95, 1), (100, 0)],
    "systolic_bp": [(90, 3), (100, 2), (110, 1), (219, 0), (999, 3)],
    "heart_rate": [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (999, 3)],
    "temp_c": [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (99, 2)],
}
_NEWS2_SOURCE = "NEWS2 (RCP 2017): aggregate 5-6 or any single parameter 3 = urgent response; 7+ = emergency response"


def news2(st: _State) -> FiredRule | None:
    """NEWS2 from the vital signs the patient (or a carer, or a nurse they quote) reported, for adults (16+ or age
    not known): new confusion scores 3 for consciousness. None when no vital sign was reported or the score is
    low. Missing parameters count 0, so a partial score can only under-estimate: it escalates, never reassures."""
    age = st.age_years()
    if age is not None and age < 16:
        return None
    points: list[tuple[int, Evidence]] = []
    for name, bands in _NEWS2.items():
        readings = st.vitals.get(name) or []
        if not readings:
            continue
        value, ev = readings[-1]
        points.append((next(p for hi, p in bands if value <= hi), ev))
    if not points:
        return None
    if "confusion" in st.present:
        points.append((3, st.present["confusion"][-1]))
    total = sum(p for p, _ in points)
    level: Level | None = "emergency" if total >= 7 else "urgent" if total >= 5 or any(p == 3 for p, _ in points) else None
    if level is None:
        return None
    key = max((ev for _, ev in points), key=lambda e: (e.turn, e.start))
    return FiredRule(id="news2", level=level, title=f"NEWS2 score {total} from the reported vital signs",
                     source=_NEWS2_SOURCE, evidence=key.evidence, turn=key.turn, start=key.start, end=key.end,
                     concepts=[ev.concept for _, ev in points], all_evidence=[ev for _, ev in points])


def assess(turns: list[str] | str, profile: dict | None = None, *, rules: RuleSet | None = None,
           speaker: str | None = None) -> TriageResult:
    """Triage the whole history of patient turns (each analysed once, :func:`chatdoc.clinical.analyse_record`).
    ``profile``: optional age_years, sex, pregnant, vitals; ``speaker``: "carer" when a carer is known to talk."""
    if isinstance(turns, str):
        turns = [turns]
    return assess_findings(analyse_record(list(turns), speaker=speaker), profile, rules=rules)


def assess_findings(record: list[Findings], profile: dict | None = None, *, rules: RuleSet | None = None) -> TriageResult:
    """Triage from typed findings (one :class:`~chatdoc.clinical.Findings` per patient turn, in order)."""
    t0 = time.perf_counter()
    rs = rules or get_rules()
    st = _State(record, dict(profile or {}), rs)
    fired: list[FiredRule] = []
    for rule in rs.rules:
        for trig in rule.triggers:
            ev = st.holds(trig)
            if ev is None:
                continue
            key = max(ev, key=lambda e: (e.turn, e.start))  # the finding that completed the rule
            fired.append(FiredRule(
                id=rule.id, level=rule.level, title=rule.title, source=rule.source, evidence=key.evidence,
                turn=key.turn, start=key.start, end=key.end, concepts=[e.concept for e in ev],
                all_evidence=ev, crisis=rule.crisis,
            ))
            break
    if (news := news2(st)) is not None:
        fired.append(news)
    fired.sort(key=lambda f: urgency_rank(f.level))
    # the latest turn alone, on its cached analysis (no profile): the dialogue's "new crisis" and acknowledgement check
    latest = _State(record[-1:], {}, rs) if len(record) > 1 or profile else st
    latest_crisis = any(r.crisis and any(latest.holds(t) is not None for t in r.triggers) for r in rs.rules)
    crisis = next((f.crisis for f in fired if f.crisis), None)
    level = combine_levels(*(f.level for f in fired)) if fired else rs.default_level
    res = TriageResult(
        level=level, fired=fired, crisis=crisis is not None, crisis_kind=crisis, vitals=st.vitals_latest(),
        age_years=st.age_years(), pregnant=st.pregnant, negated=st.negated, default_used=not fired,
        latest_crisis=latest_crisis,
    )
    logger.debug("triage level={} rules={} turns={} ms={:.1f}", level, res.rule_ids, len(record),
                 (time.perf_counter() - t0) * 1000)
    return res
