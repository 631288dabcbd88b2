"""Build the urgency-labelled vignette evaluation sets.

Reads the two public case collections and the diagnosis -> urgency table and writes one JSON
line per case::

    python -m chatdoc.tools.eval.build_vignette_sets            # build + check
    python -m chatdoc.tools.eval.build_vignette_sets --check    # coverage / validity only

Inputs (defaults relative to the repository root):
  * ``../shared/data/vignettes/avey_vignettes.jsonl``       (Avey "SymptomCheck Bench", MIT)
  * ``../shared/data/agentclinic/agentclinic_medqa.jsonl``  (AgentClinic MedQA OSCE, MIT)
  * ``configs/urgency_map.yaml``                           (levels, sources, per-case overrides)

Outputs: ``tests/evalsets/vignettes.jsonl`` and ``tests/evalsets/agentclinic.jsonl``::

    {"id": "avey-0001", "origin": "avey", "diagnosis": "...", "expected": "<level>",
     "reference": "<source>", ["override": "<reason>",] "text": "<first-person vignette>",
     "profile": {"age_years": 61, "sex": "male"}}

``text`` is a deterministic rewrite of the case fields into what the patient (or, for a child
under 13, the parent) would type: third-person pronouns become first person where that is a
simple substitution, absent findings become "I haven't had ..." sentences (negations are kept),
history goes last. For AgentClinic only ``Patient_Actor`` is used; fragments in it that read
like examination findings (vital signs, reflexes, auscultation ...) are dropped.

Bad records (unparseable JSON, missing fields, diagnosis not in the table) are skipped and
reported; the exit status is 1 when anything was skipped or the table is invalid.
Plain Python + PyYAML only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import yaml

LEVELS = ("emergency", "urgent", "routine", "self_care")
REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_MAP = REPO / "configs" / "urgency_map.yaml"
DEFAULT_OUT = REPO / "tests" / "evalsets"
CHILD_MAX_AGE = 12  # a parent types for patients aged 0-12


def norm(s: Any) -> str:
    """Case-folded, whitespace-collapsed diagnosis key."""
    return " ".join(str(s).split()).casefold()


# ------------------------------------------------------------------ urgency table
class MapError(ValueError):
    pass


def load_map(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Return (normalized diagnosis -> entry, case id -> override). Raises MapError."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("diagnoses"), list):
        raise MapError(f"{path}: expected a mapping with a 'diagnoses' list")
    table: dict[str, dict] = {}
    problems: list[str] = []
    for i, e in enumerate(data["diagnoses"]):
        if not isinstance(e, dict) or not e.get("diagnosis"):
            problems.append(f"diagnoses[{i}]: no 'diagnosis'")
            continue
        if e.get("level") not in LEVELS:
            problems.append(f"{e['diagnosis']!r}: level {e.get('level')!r} not in {LEVELS}")
        for f in ("source", "why"):
            if not str(e.get(f) or "").strip():
                problems.append(f"{e['diagnosis']!r}: empty {f!r}")
        for name in [e["diagnosis"], *(e.get("aliases") or [])]:
            k = norm(name)
            if k in table and table[k] is not e:
                problems.append(f"{name!r} listed twice")
            table[k] = e
    overrides: dict[str, dict] = {}
    for i, o in enumerate(data.get("overrides") or []):
        if not isinstance(o, dict) or not o.get("id"):
            problems.append(f"overrides[{i}]: no 'id'")
            continue
        if o.get("level") not in LEVELS:
            problems.append(f"override {o['id']}: level {o.get('level')!r} not in {LEVELS}")
        if not str(o.get("reason") or "").strip():
            problems.append(f"override {o['id']}: empty 'reason'")
        if o["id"] in overrides:
            problems.append(f"override {o['id']} listed twice")
        overrides[o["id"]] = o
    if problems:
        raise MapError("; ".join(problems))
    return table, overrides


# ------------------------------------------------------------------ first-person rewrite
_IRREGULAR = {
    "is": "am", "has": "have", "does": "do", "doesn't": "don't", "hasn't": "haven't",
    "isn't": "am not", "goes": "go", "was": "was", "wasn't": "wasn't",
}
_ADVERBS = {
    "also", "often", "sometimes", "usually", "still", "recently", "now", "never", "always",
    "occasionally", "just", "only", "currently", "constantly", "then", "later", "further",
    "initially", "first", "frequently", "lately", "not", "even", "really", "subsequently",
}
# sentence starting with a bare verb ("Presents with ...", "Complains of ...")
_BARE_VERB = re.compile(
    r"(^|(?<=[.!?]\s))(Presents|Presented|Presenting|Comes|Came|Complains|Complained|Complaining|"
    r"Reports|Reported|Describes|Mentions|Denies|Admits|Notes|Noticed|Experiences|Has|Had|Is|Was|"
    r"Suffers|Suffered|Developed|Develops|Started|Starts|Woke|Wakes|Feels|Felt)\b"
)


def _third_to_first_verb(word: str) -> str:
    low = word.lower()
    if low in _IRREGULAR:
        out = _IRREGULAR[low]
    elif re.fullmatch(r"[a-z]+ies", low) and len(low) > 4:
        out = low[:-3] + "y"
    elif re.fullmatch(r"[a-z]+(?:ss|sh|ch|x|z|o)es", low):
        out = low[:-2]
    elif re.fullmatch(r"[a-z]+[^s'u]s", low) and low not in {"this", "has", "was", "his", "as", "us"}:
        out = low[:-1]
    else:
        return word
    return out


def _conjugate_after(text: str, start: int) -> str:
    """Conjugate the first verb after position ``start`` (skipping adverbs) to 1st person."""
    m = re.compile(r"(\s+)([A-Za-z']+)").match(text, start)
    while m and m.group(2).lower() in _ADVERBS:
        m = re.compile(r"(\s+)([A-Za-z']+)").match(text, m.end())
    if not m:
        return text
    new = _third_to_first_verb(m.group(2))
    return text[: m.start(2)] + new + text[m.end(2):]


_FUNCTION_WORDS = {
    "and", "or", "to", "that", "with", "in", "on", "at", "for", "from", "by", "as", "the", "a", "an",
    "is", "was", "but", "if", "when", "so", "because", "up", "down", "out", "off", "over", "about",
    "after", "before", "into", "again", "since", "while", "feel", "feels", "home", "back", "no",
    "not", "until", "during", "much", "very", "more", "less",
}


_OTHERS = {
    "female": r"mother|mom|mum|daughter|sister|wife|girlfriend|grandmother|aunt|niece",
    "male": r"father|dad|son|brother|husband|boyfriend|grandfather|uncle|nephew",
    "any": r"friends?|partners?|roommates?|co-?workers?|colleagues?|classmates?|mates?|parents?|"
           r"relatives?|family|members|guests|players?|physician|doctor|GP|child|children|baby|kids?|"
           r"peers?|neighbou?rs?|people|someone",
}
_SPEECH = r"denies|reports|mentions|complains|states|says|describes|admits|notes|feels|stated|reported"


def _convert_clause(t: str, sex: str) -> str:
    """Pronoun swap on text whose he/she/his/her all refer to the patient."""
    P = ("[Ss]he", "[Hh]er") if sex == "female" else ("[Hh]e", "[Hh]is") if sex == "male" else \
        ("(?:[Hh]e|[Ss]he)", "(?:[Hh]is|[Hh]er)")
    t = re.sub(r"\b(?:[Tt]he )?[Pp]atient(?:'s|’s)(?=\s)", lambda m: "My" if m.group(0)[0] in "TP" else "my", t)
    t = re.sub(r"\b(?:him|her)self\b" if sex == "unknown" else
               (r"\bherself\b" if sex == "female" else r"\bhimself\b"), "myself", t)
    if sex in ("male", "unknown"):
        t = re.sub(r"\b[Hh]is\b", lambda m: "My" if m.group(0)[0] == "H" else "my", t)
        t = re.sub(r"\bhim\b", "me", t)
    if sex in ("female", "unknown"):
        def _her(m: re.Match) -> str:
            nxt = m.group(2)
            poss = bool(nxt) and nxt.lower() not in _FUNCTION_WORDS
            w = "my" if poss else "me"
            return w.capitalize() if m.group(1)[0] == "H" else w

        t = re.sub(r"\b([Hh]er)\b(?=(?:\s+([A-Za-z][\w'-]*))?)", _her, t)
    t = re.sub(r"\b(by|to|for|with|from|of|about|asked) (?:the|this) patient\b(?!['’])", r"\1 me", t)
    t = re.sub(rf"\b{P[0]}'s\b", "I'm", t)
    subj = re.compile(
        rf"(?:\b(?:{P[0]}|[Tt]he patient|[Tt]his patient)|(?:^|(?<=[.;:]\s))Patient|\b(?:[Tt]his (?:lady|woman|women|man|male|female|gentleman)))\b(?!['’])"
    )
    pos = 0
    while True:
        m = subj.search(t, pos)
        if not m:
            break
        head = t[: m.start()] + "I"
        t = head + _conjugate_after(t[m.end():], 0)
        pos = len(head)
    return t


def to_first_person(text: str, sex: str = "unknown") -> str:
    """Third person -> first person where the substitution is simple; meaning is preserved.

    Only pronouns of the patient's sex are swapped. In a sentence that mentions another person
    who could be referred to by the same pronouns (her daughter, his friend ...), only the part
    up to and including that mention is converted; the rest is left as written.
    """
    if not text:
        return ""
    others = "|".join(v for k, v in _OTHERS.items() if k in (sex, "any") or sex == "unknown")
    other_re = re.compile(rf"\b(?:{others})\b", re.I)
    out = []
    for sent in re.split(r"(?<=[.!?])\s+", text):
        m = other_re.search(sent)
        plural = bool(m) and m.group(0).lower().endswith(("s", "family", "people", "children"))
        if m and not plural:
            sent = _convert_clause(sent[: m.end()], sex) + sent[m.end():]
        else:
            sent = _convert_clause(sent, sex)
        sent = _BARE_VERB.sub(lambda b: b.group(1) + "I " + _third_to_first_verb(b.group(2).lower()), sent)
        if re.search(r"\bI\b", sent):
            sent = re.sub(rf"\b(and|but) ({_SPEECH})\b",
                          lambda v: v.group(1) + " " + _third_to_first_verb(v.group(2)), sent)
            sent = re.sub(r"\band is (a|an|currently|now|taking|on)\b", r"and am \1", sent)
        out.append(sent)
    return " ".join(out)


def _sentence(s: str) -> str:
    s = " ".join(s.split()).strip(" ,;")
    if not s:
        return ""
    s = s[0].upper() + s[1:]
    return s if s[-1] in ".!?" else s + "."


_NEG_START = re.compile(r"(?i)^(no|not|non|none|never|denies|normal)\b")
_HAS_NEG = re.compile(r"(?i)\b(no|not|non|never|negative|without)\b|n't\b")


def absent_sentences(absent: str, child: bool, sex: str = "unknown") -> list[str]:
    """"No X, No Y, Not a smoker" -> first-person negative sentences (negation kept verbatim).

    For a child (a parent is typing) the sentences are about the child: "He hasn't had X."
    """
    if not absent or absent.strip() in {"-", "None", "none"}:
        return []
    a = re.sub(r"\bNo(?=relationship)", "No ", absent)
    parts = re.split(r"[,.;]|(?<=[a-z)])(?=No[t ])", a)
    items: list[str] = []
    for p in parts:
        p = " ".join(p.split())
        if not p:
            continue
        if items and not _NEG_START.match(p) and not _HAS_NEG.search(p):
            items[-1] += ", " + p  # continuation of a list: "No new soaps, lotions, or creams"
        else:
            items.append(p)
    if child:
        subj = {"male": "He", "female": "She"}.get(sex, "They")
        hasnt, has, isnt, smoke = ((f"{subj} hasn't had", f"{subj} has no", f"{subj} isn't", f"{subj} doesn't smoke")
                                   if subj != "They" else
                                   ("They haven't had", "They have no", "They're not", "They don't smoke"))
    else:
        hasnt, has, isnt, smoke = "I haven't had", "I have no", "I'm not", "I don't smoke"
    out = []
    for it in items:
        m = re.match(r"(?i)^no\s+(.*)$", it)
        if m:
            rest = m.group(1)
            if re.fullmatch(r"(?i)smoking( history)?|smoker", rest):
                out.append(_sentence(smoke))
            elif re.match(r"(?i)(known|history|previous|pets?|family|smoking|alcohol|drug)\b", rest):
                out.append(_sentence(f"{has} {rest}"))
            else:
                if re.match(r"[A-Z][a-z]", rest):
                    rest = rest[0].lower() + rest[1:]
                out.append(_sentence(f"{hasnt} {rest}"))
            continue
        m = re.match(r"(?i)^not\s+(?:an?\s+)?(.*)$", it)
        if m:
            rest = m.group(1)
            out.append(_sentence(smoke if re.fullmatch(r"(?i)smoker", rest) else f"{isnt} {it[4:].strip()}"))
            continue
        out.append(_sentence(it if child else to_first_person(it, sex)))
    return [s for s in out if s]


def _clean(s: Any) -> str:
    s = "" if s is None else str(s)
    s = s.replace('""', '"')
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z]{2,})", ". ", s)  # glued sentences "umbilicusDuring"
    s = re.sub(r"\s+", " ", s).strip()
    return "" if s in {"-", "", "None."} else s


# ------------------------------------------------------------------ demographics
_AGE = re.compile(r"(\d+(?:\.\d+)?)[\s-]*(year|yr|month|week|day)s?[\s-]*old", re.I)


def parse_demographics(s: str, context: str = "") -> tuple[int | None, float | None, str]:
    """-> (age_years, age_months_or_None, sex)."""
    s = s or ""
    age_y: int | None = None
    age_m: float | None = None
    m = _AGE.search(s)
    if m:
        n, unit = float(m.group(1)), m.group(2).lower()
        months = {"year": n * 12, "yr": n * 12, "month": n, "week": n / 4.345, "day": n / 30.44}[unit]
        age_y = int(months // 12)
        if months < 24:
            age_m = round(months, 1)
    elif re.search(r"(?i)newborn|neonate", s):
        age_y, age_m = 0, 0.0
    low = s.lower()
    if re.search(r"\b(female|woman|women|girl|lady|mother)\b", low):
        sex = "female"
    elif re.search(r"\b(male|man|men|boy|gentleman|father)\b", low):
        sex = "male"
    else:  # "3-year-old child": infer from pronouns in the history
        he = len(re.findall(r"\b(he|his|him)\b", context, re.I))
        she = len(re.findall(r"\b(she|her|hers)\b", context, re.I))
        sex = "male" if he > she else "female" if she > he else "unknown"
    return age_y, age_m, sex


def opening(age_y: int | None, age_m: float | None, sex: str) -> tuple[str, bool]:
    """First sentence and whether a parent is typing."""
    if age_y is not None and age_y <= CHILD_MAX_AGE:
        who = {"male": "son", "female": "daughter"}.get(sex, "child")
        if age_m is not None and age_m < 1:
            return f"I'm writing about my newborn {'baby ' + who if who != 'child' else 'baby'}.", True
        if age_m is not None and age_m < 24:
            return f"I'm writing about my {int(age_m)} month old {who}.", True
        return f"I'm writing about my {age_y} year old {who}.", True
    noun = {"male": "man", "female": "woman"}.get(sex, "person") if age_y is None or age_y >= 18 else \
        {"male": "boy", "female": "girl"}.get(sex, "teenager")
    if age_y is None:
        return f"I'm a {noun}.", False
    art = "an" if re.match(r"8|1[18]$", str(age_y)) else "a"
    return f"I'm {art} {age_y} year old {noun}.", False


# ------------------------------------------------------------------ Avey
def avey_text(rec: dict) -> tuple[str, dict]:
    age_y, age_m, sex = parse_demographics(rec["demographics"], rec.get("presentation", ""))
    first, child = opening(age_y, age_m, sex)
    conv = (lambda x: x) if child else (lambda x: to_first_person(x, sex))
    parts = [first]
    cc = _clean(rec.get("chief_complaints"))
    if cc:
        cc = re.sub(r"\bof,\s*", "of ", cc)
        parts.append(_sentence(f"{'The main problem' if child else 'My main problem'}: {cc}"))
    pres = _clean(rec.get("presentation"))
    if pres:
        parts.append(_sentence(conv(pres)))
    parts += absent_sentences(_clean(rec.get("absent_findings")), child, sex)
    for label, key in (("In the past", "physical_history"), ("Family history", "family_history"),
                       ("Social history", "social_history")):
        v = _clean(rec.get(key))
        if v:
            parts.append(_sentence(f"{label}: {conv(v)}"))
    profile = {"age_years": age_y, "sex": sex}
    if age_m is not None:
        profile["age_months"] = age_m
    return " ".join(p for p in parts if p), profile


# ------------------------------------------------------------------ AgentClinic
_EXAM = re.compile(
    r"(?i)\b(examination|exam\b|auscultation|palpation|reflex(es)?|plantar|fasciculation|fontanelle|"
    r"holosystolic|murmur|pulse is|respirations are|respirations of|pulse of|vital signs|/min\b|mmhg|"
    r"oriented to|pupils)"
)


def _flatten(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [x for val in v.values() for x in _flatten(val)]
    if isinstance(v, (list, tuple)):
        return [x for val in v for x in _flatten(val)]
    return [str(v)]


_NULLS = re.compile(r"(?i)^(n/?a|na|none|not (provided|specified|applicable)|information not (provided|specified)"
                    r"|no additional (information|symptoms)( provided| mentioned| noted)?.*|not applicable.*"
                    r"|no relevant social history provided|.*\bnot provided|.*not applicable (due|given) to .*age.*)\.?$")


def _split_sentences(s: str) -> list[str]:
    return [x for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", s.strip()) if x.strip()]


def _keep(frags: Iterable[str], dropped: Counter) -> list[str]:
    out = []
    for f in frags:
        f = " ".join(str(f).split())
        if not f or _NULLS.match(f):
            continue
        if _EXAM.search(f):
            dropped["exam-like fragment"] += 1
            continue
        out.append(f)
    return out


def agentclinic_text(pa: dict, dropped: Counter) -> tuple[str, dict]:
    hist = " ".join(_flatten(pa.get("History")))
    age_y, age_m, sex = parse_demographics(str(pa.get("Demographics", "")), hist)
    first, child = opening(age_y, age_m, sex)
    if child:
        who = {"male": "My son", "female": "My daughter"}.get(sex, "My child")
        def conv(x: str, who: str = who) -> str:
            return re.sub(r"(?:\b([Tt])he (?:patient|newborn|infant|baby|child|boy|girl)|(?:^|(?<=[.;:]\s))(P)atient)\b",
                          lambda m: (who if (m.group(1) or m.group(2) or "").isupper() else who.lower()), x)
    else:
        conv = lambda x: to_first_person(x, sex)
    parts = [first]
    sym = pa.get("Symptoms") or {}
    if isinstance(sym, dict):
        prim = _keep(_flatten(sym.get("Primary_Symptom")), dropped)
        sec = _keep(_flatten(sym.get("Secondary_Symptoms")), dropped)
    else:
        prim, sec = _keep(_flatten(sym), dropped), []
    if prim:
        parts.append(_sentence(f"{'The main problem' if child else 'My main problem'}: {'; '.join(prim)}"))
    parts += [_sentence(conv(s)) for s in _keep(_split_sentences(" ".join(_flatten(pa.get("History")))), dropped)]
    if sec:
        parts.append(_sentence("Also: " + "; ".join(conv(s) for s in sec)))
    ros = _keep([s for x in _flatten(pa.get("Review_of_Systems")) for s in _split_sentences(x)], dropped)
    if ros:
        parts.append(" ".join(_sentence(conv(s)) for s in ros))
    meds = _keep(_flatten([pa.get(k) for k in ("Current_Medications", "Medications", "Drug_History")]), dropped)
    if meds:
        parts.append(_sentence("Medicines: " + ", ".join(meds)))
    pmh = _keep(_flatten(pa.get("Past_Medical_History")), dropped)
    if pmh:
        parts.append(_sentence("In the past: " + " ".join(_sentence(conv(s)) for s in pmh).rstrip(".")))
    soc = _keep(_flatten(pa.get("Social_History")), dropped)
    if soc:
        parts.append(_sentence("Social history: " + " ".join(_sentence(conv(s)) for s in soc).rstrip(".")))
    profile = {"age_years": age_y, "sex": sex}
    if age_m is not None:
        profile["age_months"] = age_m
    return " ".join(p for p in parts if p), profile


# ------------------------------------------------------------------ build
def _read_jsonl(path: Path, skipped: list[str], origin: str) -> Iterable[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                skipped.append(f"{origin} line {n}: invalid JSON ({e.msg})")


def _label(cid: str, diagnosis: str, table: dict, overrides: dict, used: set, skipped: list) -> dict | None:
    entry = table.get(norm(diagnosis))
    if entry is None:
        skipped.append(f"{cid}: diagnosis {diagnosis!r} not in urgency map")
        return None
    out = {"expected": entry["level"], "reference": entry["source"]}
    ov = overrides.get(cid)
    if ov is not None:
        if norm(ov.get("diagnosis", diagnosis)) != norm(diagnosis):
            skipped.append(f"{cid}: override is for {ov.get('diagnosis')!r}, case is {diagnosis!r} (override ignored)")
        else:
            used.add(cid)
            out["expected"] = ov["level"]
            out["override"] = ov["reason"]
    return out


def build(avey: Path, agentclinic: Path, map_path: Path) -> tuple[dict[str, list[dict]], list[str], Counter]:
    table, overrides = load_map(map_path)
    skipped: list[str] = []
    dropped: Counter = Counter()
    used: set[str] = set()
    sets: dict[str, list[dict]] = {"avey": [], "agentclinic": []}
    for n, rec in _read_jsonl(avey, skipped, "avey"):
        cid = f"avey-{n:04d}"
        if not isinstance(rec, dict) or not str(rec.get("correct_diagnosis") or "").strip() \
                or not str(rec.get("presentation") or "").strip() or "demographics" not in rec:
            skipped.append(f"{cid}: missing correct_diagnosis/presentation/demographics")
            continue
        lab = _label(cid, rec["correct_diagnosis"], table, overrides, used, skipped)
        if lab is None:
            continue
        try:
            text, profile = avey_text(rec)
        except Exception as e:  # a bad field must not stop the build
            skipped.append(f"{cid}: could not render text ({type(e).__name__}: {e})")
            continue
        sets["avey"].append({"id": cid, "origin": "avey", "diagnosis": rec["correct_diagnosis"],
                             **_ordered(lab), "text": text, "profile": profile})
    for n, rec in _read_jsonl(agentclinic, skipped, "agentclinic"):
        cid = f"agentclinic-{n:03d}"
        osce = rec.get("OSCE_Examination") if isinstance(rec, dict) else None
        pa = osce.get("Patient_Actor") if isinstance(osce, dict) else None
        dx = osce.get("Correct_Diagnosis") if isinstance(osce, dict) else None
        if not isinstance(pa, dict) or not str(dx or "").strip():
            skipped.append(f"{cid}: missing OSCE_Examination.Patient_Actor/Correct_Diagnosis")
            continue
        lab = _label(cid, dx, table, overrides, used, skipped)
        if lab is None:
            continue
        try:
            text, profile = agentclinic_text(pa, dropped)
        except Exception as e:
            skipped.append(f"{cid}: could not render text ({type(e).__name__}: {e})")
            continue
        sets["agentclinic"].append({"id": cid, "origin": "agentclinic", "diagnosis": dx,
                                    **_ordered(lab), "text": text, "profile": profile})
    for cid in sorted(set(overrides) - used):
        skipped.append(f"override {cid}: no matching case (unused)")
    return sets, skipped, dropped


def _ordered(lab: dict) -> dict:
    keys = ("expected", "reference", "override")
    return {k: lab[k] for k in keys if k in lab}


def check_outputs(paths: Iterable[Path]) -> list[str]:
    """Every line valid JSON with the required fields and a valid level."""
    errs = []
    for p in paths:
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                errs.append(f"{p.name}:{n}: invalid JSON ({e.msg})")
                continue
            for f in ("id", "origin", "diagnosis", "expected", "reference", "text", "profile"):
                if f not in r:
                    errs.append(f"{p.name}:{n}: missing {f}")
            if r.get("expected") not in LEVELS:
                errs.append(f"{p.name}:{n}: invalid level {r.get('expected')!r}")
    return errs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--avey", type=Path, help="default: DATA/vignettes/avey_vignettes.jsonl")
    ap.add_argument("--agentclinic", type=Path, help="default: DATA/agentclinic/agentclinic_medqa.jsonl")
    ap.add_argument("--map", type=Path, default=DEFAULT_MAP)
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="check coverage and validity, write nothing")
    a = ap.parse_args(argv)
    avey = a.avey or a.data_dir / "vignettes" / "avey_vignettes.jsonl"
    ac = a.agentclinic or a.data_dir / "agentclinic" / "agentclinic_medqa.jsonl"
    for p in (avey, ac, a.map):
        if not p.is_file():
            print(f"error: {p} not found", file=sys.stderr)
            return 2
    try:
        sets, skipped, dropped = build(avey, ac, a.map)
    except MapError as e:
        print(f"error: invalid urgency map: {e}", file=sys.stderr)
        return 2
    table, overrides = load_map(a.map)
    outs = {"avey": a.out_dir / "vignettes.jsonl", "agentclinic": a.out_dir / "agentclinic.jsonl"}
    if not a.check:
        a.out_dir.mkdir(parents=True, exist_ok=True)
        for origin, rows in sets.items():
            with outs[origin].open("w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        errs = check_outputs(outs.values())
        for e in errs:
            print(f"invalid output: {e}", file=sys.stderr)
        skipped += errs
    distinct = {norm(r["diagnosis"]) for rows in sets.values() for r in rows}
    print(f"urgency map: {len({id(e) for e in table.values()})} entries, {len(overrides)} overrides")
    for origin, rows in sets.items():
        c = Counter(r["expected"] for r in rows)
        n_ov = sum("override" in r for r in rows)
        dist = ", ".join(f"{lvl} {c.get(lvl, 0)}" for lvl in LEVELS)
        print(f"{origin}: {len(rows)} cases, {len({norm(r['diagnosis']) for r in rows})} distinct diagnoses, "
              f"{n_ov} overridden | {dist}" + ("" if a.check else f" -> {outs[origin]}"))
    print(f"distinct diagnoses (both sets, normalized): {len(distinct)}")
    if dropped:
        print("AgentClinic Patient_Actor fragments left out: "
              + ", ".join(f"{v} {k}" for k, v in dropped.items()))
    for s in skipped:
        print(f"skipped: {s}", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
