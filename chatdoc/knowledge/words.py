"""Word-level helpers shared by retrieval and the support check: content stems, numbers, passage sentences.

Reuses the project's one Porter stemmer (``chatdoc.clinical.lexicon.stem``), spaCy's English stop-word list and
the red-flag rule file's typo table (``pian: pain``), so a lay question is tokenised the way the rest of chatdoc
reads patient text. UK spellings are mapped to the US spellings MedQuAD uses ("anaemia" -> "anemia").
"""

from __future__ import annotations

import re
from functools import lru_cache

from spacy.lang.en.stop_words import STOP_WORDS

from chatdoc.clinical.lexicon import stem

# question and filler words that carry no topic ("what", "mean") on top of spaCy's list
_EXTRA_STOP = {"what", "whats", "does", "mean", "means", "tell", "know", "like", "thing", "things", "get", "gets",
               "got", "really", "actually", "basically", "exactly", "kind", "sort", "lot", "lots", "ok", "okay",
               "please", "thanks", "thank", "hi", "hello", "doc", "doctor", "dont", "im", "ive", "isnt", "cant",
               "wondering", "wonder", "want", "wanted", "need", "question", "questions", "someone", "somebody"}
STOP = frozenset(w.replace("'", "") for w in STOP_WORDS) | _EXTRA_STOP

# UK -> US spelling fragments (MedQuAD is written in US English); applied to whole words by prefix/infix
_UK_US = (("oesophag", "esophag"), ("oestr", "estr"), ("haem", "hem"), ("anaem", "anem"), ("aemia", "emia"),
          ("leukaem", "leukem"), ("paed", "ped"), ("foet", "fet"), ("coeliac", "celiac"), ("diarrhoea", "diarrhea"),
          ("dyspnoea", "dyspnea"), ("oedema", "edema"), ("tumour", "tumor"), ("colour", "color"),
          ("behaviour", "behavior"), ("orthopaed", "orthoped"), ("gynaec", "gynec"), ("ischaem", "ischem"),
          ("sulph", "sulf"), ("hypothyroidis", "hypothyroid"), ("mould", "mold"))

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _typos() -> dict[str, str]:
    """The rule file's word-level typo table (``headake: headache``), lower-cased, apostrophes dropped."""
    try:
        from chatdoc.safety.rules import get_rules

        return {k.lower().replace("'", ""): v.lower() for k, v in get_rules().spelling.items()}
    except Exception:  # the table only improves recall; retrieval works without it
        return {}


@lru_cache(maxsize=50000)
def _us(word: str) -> str:
    for uk, us in _UK_US:
        if uk in word:
            word = word.replace(uk, us)
    return word


def words(text: str, *, correct: bool = False) -> list[str]:
    """Lower-case words (apostrophes dropped), typo-corrected and US-spelled when ``correct``."""
    out = [w.replace("'", "") for w in _WORD.findall(text.lower().replace("\u2019", "'"))]
    if not correct:
        return out
    typos = _typos()
    return [_us(x) for w in out for x in typos.get(w, w).split()]


def content_stems(text: str, *, correct: bool = False) -> list[str]:
    """Stems of the content words (stop words and 1-letter tokens out; numbers kept as they are)."""
    return [w if w.isdigit() else stem(w) for w in words(text, correct=correct) if w not in STOP and len(w) > 1]


_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
                 "twenty": "20", "thirty": "30", "fifty": "50", "hundred": "100", "half": "0.5"}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def numbers(text: str) -> set[str]:
    """The numbers a text states, digits or number words ("two" = "2"), thousands separators dropped."""
    out = set()
    for m in _NUMBER.finditer(text):
        tok = m.group().lower()
        out.add(_NUMBER_WORDS.get(tok) or tok.replace(",", ""))
    return out


# A sentence ends at . ! ? followed by space and an upper-case letter, digit, quote or bracket, or at a line
# break. (chatdoc.clinical.text.sentences also splits at ";", which cuts MedQuAD's "(ALL; also called ...)".)
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])|\s*\n+\s*|\s+-\s+(?=[A-Z])")


def sentences(text: str) -> list[str]:
    """Sentences of a passage; bullet dashes and surrounding space stripped."""
    out = []
    for s in _SENT_END.split(text):
        s = s.strip().lstrip("-•* ").strip()
        if s:
            out.append(s)
    return out


# Common (mostly UK) lay names whose MedQuAD name shares no word with them; the MedQuAD name is appended to the
# question ("piles" -> "piles (hemorrhoids)") so both BM25 and the rerank see it.
LAY_NAMES = {
    "piles": "hemorrhoids", "underactive thyroid": "hypothyroidism", "overactive thyroid": "hyperthyroidism",
    "glandular fever": "mononucleosis", "water infection": "urinary tract infection", "slipped disc":
    "herniated disk", "cot death": "sudden infant death syndrome", "german measles": "rubella",
    "whooping cough": "pertussis", "mnd": "motor neuron disease", "motor neurone": "motor neuron",
    "chicken pox": "chickenpox", "bp": "blood pressure", "sugar diabetes": "diabetes", "heart failure":
    "heart failure", "wind pains": "gas", "the runs": "diarrhea", "pink eye": "conjunctivitis",
    "cold sore": "herpes simplex", "cold sores": "herpes simplex", "athletes foot": "tinea pedis",
    "bed wetting": "bedwetting enuresis", "stomach bug": "gastroenteritis", "tummy bug": "gastroenteritis",
}
_LAY = re.compile(r"\b(" + "|".join(sorted(map(re.escape, LAY_NAMES), key=len, reverse=True)) + r")\b", re.I)


def expand_lay(text: str) -> str:
    """The question with the MedQuAD name of each lay name it uses appended in brackets."""
    extra = [LAY_NAMES[m.group(1).lower()] for m in _LAY.finditer(text)]
    extra = [e for e in dict.fromkeys(extra) if e.lower() not in text.lower()]
    return f"{text} ({', '.join(extra)})" if extra else text
