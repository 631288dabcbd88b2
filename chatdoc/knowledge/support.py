"""Is a sentence supported by a passage? A strict, explainable check applied to every model-written sentence.

``supported(sentence, passage)`` is True only when ALL of these hold:

1. **Numbers**: every number in the sentence (digits or number words, "two" = "2") occurs in the passage.
2. **No new medical term**: no content word of the sentence that is absent from the passage is a medical term
   (a word of a MedQuAD focus name such as "ibuprofen", "asthma", "children", or a word with a medical
   suffix: -itis, -osis, -emia, -oma, -pathy, -ectomy, ...). A sentence cannot introduce a drug, condition,
   body part or population the passage does not mention.
3. **Coverage or paraphrase**: at least ``COVERAGE`` (80%) of the sentence's content-word stems occur in the
   passage, OR the sentence's MiniLM cosine to some passage sentence is at least ``PARAPHRASE`` (0.8).

A sentence with no content word at all ("Yes.") is not supported: it states nothing checkable.
"""

from __future__ import annotations

import re
from functools import lru_cache

from chatdoc.clinical.embed import encode
from chatdoc.knowledge.words import STOP, content_stems, numbers, sentences, words

COVERAGE = 0.8
PARAPHRASE = 0.8

# words of MedQuAD focus names that are plain language, not medical terms
_GENERIC = {"diseas", "disord", "condit", "syndrom", "type", "problem", "health", "peopl", "person", "adult",
            "common", "high", "low", "gener", "relat", "associ", "famili", "form", "caus", "test", "treatment",
            "care", "get", "live", "life", "year", "help", "risk", "factor", "normal", "sever", "mild",
            "acut", "chronic", "primari", "secondari", "late", "earli", "onset", "new", "like", "effect", "use",
            "know", "need", "manag", "live", "day", "time", "work", "step", "tip", "inform", "control", "plan",
            "side", "long", "short", "small", "larg", "deficiency", "defici", "function", "group", "man", "women",
            "woman", "men", "provid", "includ", "sign", "lead", "specif", "develop", "affect", "featur", "involv",
            "rare", "chang", "activ", "reduc", "list", "known", "increas", "total", "product", "collect", "appear",
            "respons", "progress", "depend", "treat", "prevent", "medic", "patient", "research", "human", "system",
            "impair", "loss", "damag", "growth", "abnorm", "mean", "happen", "better", "worse", "good", "bad"}
_MEDICAL_SUFFIX = re.compile(r"(?:itis|osis|oses|emia|aemia|oma|omas|pathy|ectomy|otomy|ostomy|plasty|scopy|algia|"
                             r"cillin|mycin|cycline|azole|vir|mab|nib|pril|sartan|olol|statin|prazole|dipine|"
                             r"oxacin|afil|tidine|amine|ine|idine|ide|ate|uria|plegia|trophy|genic|cocc\w*|"
                             r"virus|viral|bacter\w*)$")


@lru_cache(maxsize=1)
def _focus_terms() -> frozenset[str]:
    """Stems of the words of every MedQuAD focus name ("Hay Fever" -> hay, fever), generic words out."""
    from chatdoc.knowledge.corpus import records

    out: set[str] = set()
    for r in records():
        out.update(s for s in content_stems(r.focus) if not s.isdigit() and len(s) > 2)
    return frozenset(out - _GENERIC)


def medical_terms(sentence: str, passage: str) -> list[str]:
    """The sentence's content words absent from the passage that are medical terms (see module doc)."""
    have = set(content_stems(passage))
    terms = _focus_terms()
    out = []
    for w in words(sentence):
        if w in STOP or len(w) < 3 or w.isdigit():
            continue
        s = content_stems(w)
        if s and s[0] not in have and (s[0] in terms or _MEDICAL_SUFFIX.search(w) and len(w) > 5):
            out.append(w)
    return out


def coverage(sentence: str, passage: str) -> float:
    """Share of the sentence's content-word stems (numbers left to rule 1) that occur in the passage."""
    sent = {s for s in content_stems(sentence) if not s.isdigit()}
    if not sent:
        return 0.0
    return len(sent & set(content_stems(passage))) / len(sent)


def paraphrase(sentence: str, passage: str) -> float:
    """Highest MiniLM cosine between the sentence and a passage sentence."""
    parts = sentences(passage)
    if not parts:
        return 0.0
    v = encode([sentence, *parts])
    return float((v[1:] @ v[0]).max())


def supported(sentence: str, passage: str) -> bool:
    """True when the passage supports the sentence under the three rules of the module docstring."""
    if not sentence.strip() or not passage.strip():
        return False
    if not numbers(sentence) <= numbers(passage):
        return False
    if not {s for s in content_stems(sentence) if not s.isdigit()}:
        return False
    if medical_terms(sentence, passage):
        return False
    return coverage(sentence, passage) >= COVERAGE or paraphrase(sentence, passage) >= PARAPHRASE
