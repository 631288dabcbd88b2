"""Clinical lexicon for extraction: symptom concepts (red-flag rule concepts + configs/questions/_lexicon.yaml
+ ChatDoctor disease database symptoms), drug names and conditions.

The ChatDoctor ``disease_database_mini.csv`` (Apache-2.0) is read from ``dialogue.disease_database``
(default ``<train.data_dir>/chatdoctor/disease_database_mini.csv``); when it is absent the shipped
fallback lists in the lexicon file are used alone, so nothing breaks without ``../shared``.
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from nltk.stem.porter import PorterStemmer

from chatdoc.log import logger

_PORTER = PorterStemmer()

# Red-flag concepts that are modifiers or context, not symptoms (never listed as ROS findings).
NON_SYMPTOM = {
    "sudden_onset", "severe", "long_duration", "over_a_week", "worsening", "baby", "diabetic", "anticoagulant",
    "known_epilepsy", "immunosuppressed", "allergen_exposure", "infection", "dehydration_risk", "fever_5_days",
    "pregnant", "mental_health", "impending_doom", "harm_others", "abuse", "assaulted", "violence_injury",
    "poisoning", "accidental_extra_dose", "overdose", "cardiac_features", "chest_wall", "inhaler_not_helping",
    "seizure_red", "appendicitis_pattern", "peritonism", "one_sided_lower_abdo", "missed_period", "hypo", "hyper",
    "ketones", "admin_request", "other_routine",
    # who, where and how (context the rules use), not a symptom: never a chief complaint or a review-of-systems item
    "vte_risk", "positive_test", "older_adult", "young_infant", "malaria_travel", "child", "dangerous_mechanism",
    "road_collision", "injury_context", "male", "inhaler_more", "eye_area", "late_pregnancy", "pep",
    "emergency_contraception", "contraception", "pain_out_of_proportion", "cellulitis_named", "sickle_cell",
}

# a negation word inside a concept's own pattern ("doesnt fade", "not breathing", "cant move"): such a
# concept EXPRESSES a negation, so matching it is a positive finding (see extract.find_concepts)
NEG_IN_PATTERN = re.compile(r"\b(?:not|no|non|cant|can not|cannot|dont|doesnt|didnt|isnt|wont|havent|hasnt|arent|"
                            r"couldnt|never|unable|nothing)\b")


_DRUG_STOP = {"sodium", "nicotine", "oxygen", "water", "potassium", "vitamin", "magnesium", "benzoyl", "calcium", "ethanol"}


@dataclass
class Lexicon:
    concepts: dict[str, re.Pattern]  # symptom concept -> pattern over normalised text
    labels: dict[str, str]
    drugs: re.Pattern
    conditions: re.Pattern
    sources: dict[str, int] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)  # 0 = asked about in a question set, 1 = rule/lexicon, 2 = database
    self_negating: dict[str, re.Pattern] = field(default_factory=dict)  # concept -> its patterns containing a negation word

    def label(self, concept: str) -> str:
        return self.labels.get(concept) or concept.replace("_", " ")

    def label_as_said(self, concept: str, said: str | None) -> str:
        """The concept's label, or the patient's own words (quoted) when they share no word with it: "chills"
        is not "fever", and "a history of reflux" is not "indigestion", so staff see what was actually said."""
        label = self.label(concept)
        if not said:
            return label
        lw = stems(label, _LABEL_FILLER)
        return label if lw & stems(said) or not lw else f'"{said.strip()}"'


_LABEL_FILLER = frozenset({"that", "does", "with", "under", "when", "from", "the", "and", "not"})


@lru_cache(maxsize=50000)
def stem(word: str) -> str:
    """Porter stem of one lower-case word (the one stemmer of extraction and of the evaluation matcher)."""
    return _PORTER.stem(word)


def stems(text: str, stop: frozenset[str] | set[str] = frozenset()) -> set[str]:
    """Stemmed words of 3+ letters, ``stop`` words left out ("hypertension" and "hyperlipidemia" stay apart,
    "vomited" = "vomiting")."""
    return {stem(w) for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in stop}


def _plain(s: str) -> str:
    s = re.sub(r"\(.*?\)", "", s).lower().replace("'", "").strip()
    return re.sub(r"\s+", " ", s)


def _alt(words) -> str:
    return "|".join(sorted({w for w in words if w}, key=len, reverse=True))


def _db_path() -> Path | None:
    from chatdoc.config import get_settings

    s = get_settings()
    p = s.dialogue.disease_database
    if p is None:
        p = s.path(s.train.data_dir) / "chatdoctor" / "disease_database_mini.csv"
    p = s.path(p)
    return p if p.exists() else None


def _read_db(path: Path) -> tuple[set[str], set[str]]:
    symptoms: set[str] = set()
    drugs: set[str] = set()
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            for col, out in (("Symptom", symptoms), ("Medications", drugs)):
                try:
                    vals = ast.literal_eval(row.get(col) or "[]")
                except (ValueError, SyntaxError):
                    continue
                for v in vals:
                    v = _plain(str(v))
                    if 3 <= len(v) <= 40 and re.fullmatch(r"[a-z][a-z0-9 -]*", v):
                        out.add(v)
    # drug names: keep the first word of multi-word products ("beclomethasone nasal product" -> "beclomethasone")
    drugs = {d.split()[0] for d in drugs if len(d.split()[0]) >= 5} - _DRUG_STOP
    # symptom phrases: skip vague catch-alls
    symptoms = {s for s in symptoms if not re.search(r"\b(?:symptoms?|problems?|abnormal|other|unspecified)\b", s)}
    return symptoms, drugs


@lru_cache(maxsize=1)
def get_lexicon() -> Lexicon:
    from chatdoc.config import get_settings
    from chatdoc.safety.rules import get_rules

    s = get_settings()
    lex_file = s.path(s.dialogue.lexicon_file)
    raw = yaml.safe_load(lex_file.read_text(encoding="utf-8")) if lex_file.exists() else {}
    rules = get_rules()
    # concepts the question sets ask about (``ros.<concept>`` slots in the same folder): symptoms even when the
    # rule file uses them as modifiers. Read from the files, not through chatdoc.dialogue (a layer above).
    wanted = {m for f in sorted(lex_file.parent.glob("[!_]*.yaml")) for m in re.findall(r"\bros\.(\w+)", f.read_text(encoding="utf-8"))}
    pats: dict[str, list[str]] = {}
    for cid, concept in rules.concepts.items():
        if cid in NON_SYMPTOM and cid not in wanted:
            continue
        pats.setdefault(cid, []).extend(concept.patterns)
    for cid, plist in (raw.get("symptoms") or {}).items():
        pats.setdefault(cid, []).extend(plist)
    labels = dict(raw.get("labels") or {})
    drugs = {_plain(d) for d in raw.get("drugs") or []}
    sources = {"lexicon_drugs": len(drugs), "rule_concepts": len(pats)}
    db = _db_path()
    if db is not None:
        try:
            db_sym, db_drugs = _read_db(db)
            covered = re.compile(_alt(p for pl in pats.values() for p in pl))
            n = 0
            for phrase in sorted(db_sym):
                if covered.fullmatch(phrase) or covered.search(phrase):
                    continue  # an existing concept already recognises it
                cid = "db_" + re.sub(r"[^a-z0-9]+", "_", phrase).strip("_")
                pats[cid] = [re.escape(phrase)]
                labels.setdefault(cid, phrase)
                n += 1
            drugs |= db_drugs
            sources.update(db_symptoms=n, db_drugs=len(db_drugs))
        except Exception as e:  # a broken optional file must not stop consultations
            logger.warning("disease database not used: {}", type(e).__name__)
    concepts = {cid: re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in pl) + ")", re.I) for cid, pl in pats.items()}
    drug_rx = re.compile(r"\b(" + _alt(re.escape(d) for d in drugs) + r")\b", re.I)
    cond_rx = re.compile(r"\b(" + _alt(c.lower().replace("'", "") for c in raw.get("conditions") or ["asthma"]) + r")\b", re.I)
    rank = {cid: 0 if cid in wanted else (2 if cid.startswith("db_") else 1) for cid in concepts}
    self_neg = {}
    for cid, pl in pats.items():
        neg_pl = [p for p in pl if NEG_IN_PATTERN.search(p.replace("?:", ""))]
        if neg_pl:
            self_neg[cid] = re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in neg_pl) + ")", re.I)
    return Lexicon(concepts=concepts, labels=labels, drugs=drug_rx, conditions=cond_rx, sources=sources, rank=rank,
                   self_negating=self_neg)
