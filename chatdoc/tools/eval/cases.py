"""Simulated-patient case records: AgentClinic OSCE JSONL (as published) and our simple YAML format.

AgentClinic (``OSCE_Examination.Patient_Actor``) -> facts:
  * ``Symptoms.Secondary_Symptoms`` items -> ``symptom`` (an item starting "No ..." -> ``ros_negative``)
  * ``Past_Medical_History`` (text or list) -> ``pmh`` items (negated for "No history of X"; family
    mentions -> ``family``); ``Current_Medications`` / ``Medications`` / ``Drug_History`` -> ``medication``
  * ``Social_History`` (text or mapping) -> ``social`` items ("Non-smoker" is a negated social item)
  * ``Review_of_Systems`` (text or mapping) -> ``ros_positive`` / ``ros_negative`` items
  * ``History`` sentences are what the patient can say about the presenting complaint (not scored).
Null statements ("No significant past medical history", "Information not provided", "N/A") are not facts.

YAML case (``personas/patients/*.yaml``)::

    id: chest-tightness-01
    demographics: {age: 52, sex: male}
    opening: "I've had a tight feeling in my chest when I walk uphill."   # lay words
    history: ["It started about three weeks ago.", ...]                   # optional, not scored
    facts:
      - {text: "Short of breath on exertion", kind: symptom}
      - {text: "High blood pressure", kind: pmh}
    denies: ["fever", "cough"]                                            # -> ros_negative facts
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from chatdoc.tools.eval.facts import KINDS, Fact, key_terms


@dataclass
class Case:
    id: str
    age: str  # "35", "8 months", "" when unknown
    sex: str  # female | male | unknown
    demographics: str
    primary: str
    history: list[str] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    opening: str | None = None
    diagnosis: str | None = None
    source: str = ""

    def facts_by_kind(self) -> dict[str, list[Fact]]:
        out: dict[str, list[Fact]] = {}
        for f in self.facts:
            out.setdefault(f.kind, []).append(f)
        return out


class CaseError(ValueError):
    pass


# ---------------------------------------------------------------- text -> items

_NULL = re.compile(
    r"\bno (?:(?:significant|notable|relevant|pertinent|other|additional|further|prior|previous)\s+)?(?:\w+\s+){0,5}"
    r"(?:history|symptoms|complaints|information|issues|findings)\b(?! of)"
    r"|information not|\bnot (?:provided|specified|mentioned|applicable|available|noted)\b|^\s*n/?a\.?\s*$"
    r"|unremarkable\.?$|^\s*unremarkable|otherwise healthy|essentially negative|no known chronic|not applicable",
    re.I,
)
_NEG_LEAD = re.compile(
    r"^(?:(?:the\s+)?(?:patient|pt|she|he|mother|parents?)\s+)?(?:also\s+)?"
    r"(?:denies(?:\s+(?:any|experiencing|having))?|denied|negative for|no(?:\s+(?:history|hx)\s+of)?|not|never|without|"
    r"does\s+not\s+(?:have|report|experience)|has\s+not\s+(?:had|noticed|experienced)|hasn't\s+had|no\s+episodes\s+of)\b\s*(?:any\s+)?",
    re.I,
)
_POS_LEAD = re.compile(
    r"^(?:(?:the\s+)?(?:patient|pt|she|he|mother|parents?)\s+)?(?:also\s+)?"
    r"(?:reports|reported|endorses|complains\s+of|positive\s+for|notes|mentions|experiences|has\s+(?:a\s+)?history\s+of|"
    r"history\s+of|has)\b\s*",
    re.I,
)
_NON = re.compile(r"^\s*non-?\s*\w+", re.I)
_FAMILY = re.compile(r"\b(family|mother|father|brother|sister|sibling|parent|grand(?:mother|father)|aunt|uncle)\b", re.I)
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|;\s*")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text or "") if s.strip()]


def _split_list(text: str) -> list[str]:
    """'a, b, or c' -> [a, b, c]; keeps 'shortness of breath' whole."""
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or|nor)\s+|\s*/\s*(?=[a-z])", text)
    return [p.strip(" .") for p in parts if p and p.strip(" .")]


def text_items(text: str) -> list[tuple[str, bool]]:
    """Free text -> [(item, negated)]: sentences, 'but'/'except' clauses, lists, negation leads."""
    out: list[tuple[str, bool]] = []
    for sent in sentences(text):
        sent = sent.strip().rstrip(".")
        exc = re.split(r"\bexcept(?:\s+for)?\b|\bapart from\b", sent, maxsplit=1, flags=re.I)
        if len(exc) == 2 and _NULL.search(exc[0].strip()):
            out.extend((i, False) for i in _split_list(re.sub(r"^\s*(?:noted|for)\s+", "", exc[1].strip())))
            continue
        if _NULL.search(sent):
            continue
        for clause in re.split(r"\s+but\s+|\s+while\s+|,\s*(?=denies\b|reports\b|no\b)", sent, flags=re.I):
            clause = clause.strip(" ,.")
            neg = False
            m = _NEG_LEAD.match(clause)
            if m and m.end() > 0:
                neg, clause = True, clause[m.end():]
            else:
                m = _POS_LEAD.match(clause)
                if m and m.end() > 0:
                    clause = clause[m.end():]
            for item in _split_list(clause):
                item_neg = neg
                m2 = _NEG_LEAD.match(item)
                if m2 and m2.end() > 0 and not _NON.match(item):
                    item_neg, item = True, item[m2.end():]
                if _NON.match(item):
                    item_neg = True
                item = item.strip(" ,.")
                if item and key_terms(item):
                    out.append((item, item_neg))
    return out


def _flatten(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ". ".join(_flatten(v).rstrip(".") for v in value)
    if isinstance(value, dict):
        return ". ".join(_flatten(v).rstrip(".") for v in value.values())
    return str(value)


def parse_demographics(text: str) -> tuple[str, str]:
    t = text.lower()
    age = ""
    m = re.search(r"(\d+)[-\s](year|month|week|day)s?[-\s]old", t)
    if m:
        age = m.group(1) if m.group(2) == "year" else f"{m.group(1)} {m.group(2)}s"
    elif "newborn" in t or "neonate" in t:
        age = "newborn"
    sex = "unknown"
    if re.search(r"\b(female|woman|girl|lady|f)\b", t):
        sex = "female"
    elif re.search(r"\b(male|man|boy|gentleman|m)\b", t):
        sex = "male"
    return age, sex


# ---------------------------------------------------------------- AgentClinic

def _dedupe(facts: list[Fact]) -> list[Fact]:
    seen, out = set(), []
    for f in facts:
        k = (tuple(sorted(key_terms(f.text))), f.negated)
        if k in seen:
            continue
        seen.add(k)
        out.append(f)
    return out


def case_from_agentclinic(record: dict, idx: int) -> Case:
    try:
        osce = record["OSCE_Examination"]
        pa = osce["Patient_Actor"]
        sym = pa.get("Symptoms") or {}
        primary = sym["Primary_Symptom"]
    except (KeyError, TypeError) as e:
        raise CaseError(f"case {idx}: not an AgentClinic OSCE record (missing {e})") from None
    demo = pa.get("Demographics", "")
    age, sex = parse_demographics(demo)
    facts: list[Fact] = []
    for s in sym.get("Secondary_Symptoms") or []:
        items = text_items(s) or [(s, False)]
        for item, neg in items:
            facts.append(Fact(item, "ros_negative" if neg else "symptom", neg, "Secondary_Symptoms"))
    for item, neg in text_items(_flatten(pa.get("Past_Medical_History"))):
        kind = "family" if _FAMILY.search(item) else "pmh"
        facts.append(Fact(item, kind, neg, "Past_Medical_History"))
    for key in ("Current_Medications", "Medications", "Drug_History"):
        v = pa.get(key)
        if isinstance(v, list):
            facts.extend(Fact(m, "medication", False, key) for m in v if key_terms(str(m)))
        elif v:
            facts.extend(Fact(i, "medication", n, key) for i, n in text_items(str(v)))
    for item, neg in text_items(_flatten(pa.get("Social_History"))):
        kind = "family" if _FAMILY.search(item) else "social"
        facts.append(Fact(item, kind, neg, "Social_History"))
    for item, neg in text_items(_flatten(pa.get("Review_of_Systems"))):
        facts.append(Fact(item, "ros_negative" if neg else "ros_positive", neg, "Review_of_Systems"))
    return Case(
        id=f"agentclinic-{idx:03d}",
        age=age,
        sex=sex,
        demographics=demo,
        primary=primary,
        history=sentences(pa.get("History", "")),
        facts=_dedupe(facts),
        diagnosis=osce.get("Correct_Diagnosis"),
        source="agentclinic",
    )


def load_agentclinic(path: str | Path) -> list[Case]:
    cases = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CaseError(f"{path}: line {i + 1} is not JSON ({e.msg})") from None
                cases.append(case_from_agentclinic(rec, i))
    return cases


# ---------------------------------------------------------------- YAML

def case_from_yaml(data: dict, name: str = "") -> Case:
    if not isinstance(data, dict):
        raise CaseError(f"{name}: a case must be a mapping")
    demo = data.get("demographics") or {}
    age = str(demo.get("age", "")).strip()
    sex = str(demo.get("sex", "unknown")).strip().lower() or "unknown"
    facts = []
    for i, f in enumerate(data.get("facts") or []):
        if not isinstance(f, dict) or "text" not in f or f.get("kind") not in KINDS:
            raise CaseError(f"{name}: fact {i + 1} needs text and kind (one of {', '.join(KINDS)})")
        facts.append(Fact(str(f["text"]), f["kind"], bool(f.get("negated", False)), "yaml"))
    for d in data.get("denies") or []:
        facts.append(Fact(str(d), "ros_negative", True, "yaml"))
    opening = data.get("opening")
    primary = data.get("primary") or opening or ""
    if not primary:
        raise CaseError(f"{name}: needs an opening (the presenting complaint in lay words)")
    hist = data.get("history") or []
    if isinstance(hist, str):
        hist = sentences(hist)
    return Case(
        id=str(data.get("id") or name),
        age=age,
        sex=sex,
        demographics=f"{age}-year-old {sex}" if age else sex,
        primary=primary,
        history=[str(h) for h in hist],
        facts=facts,
        opening=opening,
        diagnosis=data.get("diagnosis"),
        source="yaml",
    )


def load_yaml_cases(path: str | Path) -> list[Case]:
    p = Path(path)
    files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]
    out = []
    for f in files:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise CaseError(f"{f}: not valid YAML ({e})") from None
        items = data if isinstance(data, list) else [data]
        out.extend(case_from_yaml(d, f.stem) for d in items)
    return out


def load_cases(path: str | Path) -> list[Case]:
    """AgentClinic .jsonl, a YAML case file, or a directory of YAML cases."""
    p = Path(path)
    if not p.exists():
        raise CaseError(f"case file not found: {p}")
    if p.is_dir() or p.suffix.lower() in (".yaml", ".yml"):
        return load_yaml_cases(p)
    if p.suffix.lower() in (".jsonl", ".json"):
        return load_agentclinic(p)
    raise CaseError(f"{p}: expected .jsonl (AgentClinic) or .yaml cases")
