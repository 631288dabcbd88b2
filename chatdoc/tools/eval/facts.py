"""Fact matching: is a case fact present in a summary text, with the right polarity?

Used by the consultation evaluation. It reads ONLY text (the final staff summary, the patient's own
messages), never the graph's structured state, so the dialogue code cannot game the score.

How a fact is matched (documented in docs/RESULTS.md as well):

1. Both sides are tokenized into lower-case words; words are Porter-stemmed and mapped through a small
   lay/clinical synonym table (``SYNONYMS``: "dyspnea"/"breathless" -> "breath", "smoker"/"tobacco" ->
   "smoke", ...). Stop words, negation cues and generic words ("patient", "history", "reports",
   "recent", ...) are dropped from a fact's *key terms*.
2. The summary is split into clauses (sentence ends, ``;``, new lines, bullets). Inside a clause each
   word gets a *polarity* by scanning left to right: a negation cue ("no", "denies", "negative",
   "without", "non", "not", ...) turns negation on, an affirmation cue ("reports", "endorses",
   "positive", "but", "has", ...) turns it off.
3. A fact is present when one clause contains at least ``ceil(THRESHOLD * n)`` of its ``n`` key terms
   (``THRESHOLD = 0.6``: 1 of 1, 2 of 2, 2 of 3, 3 of 4, 3 of 5) *in the fact's polarity*: a denied
   fact ("denies chest pain") must appear negated ("no chest pain", "Negatives: chest pain"), a positive
   fact must appear un-negated. A positive fact found only under a negation is not covered (polarity
   error), and vice versa.

Hallucinations: every claim of the summary (clauses split further on commas, with section labels and
meta lines -- triage, red flags, unanswered, "not reported" -- removed) whose key terms are less than
``SUPPORT_THRESHOLD`` (0.5) present in everything the patient said is counted as a hallucinated claim.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from chatdoc.clinical.lexicon import stem

THRESHOLD = 0.6
SUPPORT_THRESHOLD = 0.5

KINDS = ("symptom", "pmh", "social", "ros_positive", "ros_negative", "medication", "allergy", "family")

STOPWORDS = frozenset(
    """a an the and or of to in on at for with by from as is are was were be been being am it its this that
    these those he she his her him they them their i me my we our you your has have had having do does did
    doing done will would can could should may might must shall about into over under after before since
    than then there here when where which who whom what how why also any some very just only so such other
    all both each more most own same too s t per up down out off again further once while during until if
    because like get got one two""".split()
)

NEGATION_CUES = frozenset(
    """no not denies denied deny denying negative negatives without never none non nor neither absent
    absence free don't doesn't didn't hasn't haven't hadn't isn't aren't wasn't weren't dont doesnt didnt
    hasnt havent isnt nothing unremarkable""".split()
)
# words that end a negation's scope inside a clause
AFFIRMATION_CUES = frozenset(
    """reports reported report endorses endorsed endorse positive positives but admits admitted complains
    complaint complaints notes noted presents experiences experiencing yes however""".split()
)

# generic words that carry no clinical content on their own (dropped from key terms)
GENERIC = frozenset(
    """patient patients report reports reported state states stated note notes noted mention mentions
    mentioned describe describes described present presents presented history hx histori recent recently
    significant notable known current currently complain complains complaint symptom symptoms sign signs
    any other also additional experience experiencing experiences episode episodes feel feeling feels
    past medical previous prior since ago time times day days week weeks month months year years old
    year-old denies deny denied review system systems ros positive negative positives negatives endorses
    endorse endorsed admits summary chief hpi pmh social family medication medications allergy allergies
    include includes including level occasional occasionally social socially rarely regularly regular
    frequently daily weekends sometimes moderate diagnosed diagnosis""".split()
)

# stem -> canonical concept (applied after stemming, to both sides)
_SYN_WORDS: dict[str, tuple[str, ...]] = {
    "smoke": ("smoke", "smoker", "smoking", "smokes", "cigarette", "cigarettes", "tobacco", "pack", "packs", "nicotine"),
    "alcohol": ("alcohol", "drink", "drinks", "drinking", "wine", "beer", "beers", "etoh", "alcoholic", "liquor"),
    "work": ("work", "works", "working", "job", "occupation", "employed", "employment", "profession", "career"),
    "breath": ("breath", "breathing", "breathless", "breathlessness", "dyspnea", "dyspnoea", "sob", "winded"),
    "fever": ("fever", "fevers", "febrile", "temperature", "pyrexia"),
    "urine": ("urine", "urinary", "urination", "urinate", "urinating", "pee", "peeing", "micturition"),
    "stool": ("stool", "stools", "bowel", "bowels", "defecation", "poop", "feces", "faeces"),
    "vomit": ("vomit", "vomiting", "vomited", "emesis", "throwing"),
    "nausea": ("nausea", "nauseous", "nauseated", "queasy"),
    "tired": ("tired", "tiredness", "fatigue", "fatigued", "malaise", "exhausted", "exhaustion", "lethargy", "lethargic"),
    "dizzi": ("dizzy", "dizziness", "lightheaded", "lightheadedness", "vertigo"),
    "swell": ("swelling", "swollen", "swell", "swells", "edema", "oedema"),
    "bleed": ("bleed", "bleeding", "bled", "blood", "bloody", "hemorrhage", "haemorrhage"),
    "numb": ("numb", "numbness", "tingling", "paresthesia", "paresthesias", "pins"),
    "headach": ("headache", "headaches", "migraine", "migraines"),
    "pain": ("pain", "pains", "painful", "ache", "aches", "aching", "hurt", "hurts", "hurting", "sore", "soreness", "discomfort", "tenderness"),
    "weight": ("weight", "pounds", "kg", "kilos"),
    "sexual": ("sexual", "sexually", "intercourse", "condom", "condoms", "partner", "partners"),
    "travel": ("travel", "travels", "traveled", "travelled", "trip", "abroad", "camping"),
    "drug": ("drug", "drugs", "illicit", "recreational", "cocaine", "marijuana", "cannabis", "heroin"),
    "medicat": ("medication", "medications", "medicine", "medicines", "pill", "pills", "tablets", "meds", "prescription"),
    "cough": ("cough", "coughing", "coughs"),
    "diarrhea": ("diarrhea", "diarrhoea", "loose"),
    "chill": ("chills", "chill", "rigors", "shivering"),
    "sweat": ("sweat", "sweats", "sweating", "diaphoresis"),
    "appetit": ("appetite", "feeding", "eating", "hunger"),
    "rash": ("rash", "rashes", "hives"),
    "heart": ("heart", "cardiac"),
    "palpit": ("palpitation", "palpitations", "racing", "pounding"),
    "weak": ("weak", "weakness"),
    "vision": ("vision", "visual", "eyesight", "sight"),
    "diabet": ("diabetes", "diabetic", "diabetes"),
    "hypertens": ("hypertension", "hypertensive"),
    "infect": ("infection", "infections", "infected"),
    "injuri": ("injury", "injuries", "trauma", "injured"),
    "live": ("live", "lives", "living"),
    "unconsci": ("unconscious", "unresponsive", "unconsciousness", "unrousable"),
    "pregnan": ("pregnant", "pregnancy", "pregnancies", "gestation", "gravid"),
}

_stem = stem  # the dialogue lexicon's Porter stemmer: extraction and this matcher stem alike


def _build_syn() -> dict[str, str]:
    out: dict[str, str] = {}
    for canon, words in _SYN_WORDS.items():
        for w in words:
            out[w] = canon
            if _stem(w) not in _AMBIGUOUS_STEMS:
                out[_stem(w)] = canon
    return out


# stems shared by unrelated words ("medication" and "medical" both stem to "medic")
_AMBIGUOUS_STEMS = {"medic", "drink"}


_SYN = _build_syn()
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# multi-word expressions folded to one word before tokenizing
PHRASES = {
    r"\bshort(?:ness)? of breath\b": "dyspnea",
    r"\bout of breath\b": "dyspnea",
    r"\bthrowing up\b": "vomiting",
    r"\bpassing out\b|\bpassed out\b": "fainting",
}
_PHRASES = [(re.compile(k), v) for k, v in PHRASES.items()]


def words(text: str) -> list[str]:
    """Lower-case word tokens; hyphens split words ("non-smoker" -> "non", "smoker")."""
    text = text.lower().replace("’", "'")
    for pat, rep in _PHRASES:
        text = pat.sub(rep, text)
    toks = _TOKEN_RE.findall(text)
    return [t[:-2] if t.endswith("'s") else t for t in toks]


def norm(word: str) -> str:
    """Stem + synonym canonicalization of one lower-case word."""
    if word in _SYN:
        return _SYN[word]
    s = _stem(word)
    return _SYN.get(s, s)


def content_terms(text: str) -> list[str]:
    """Normalized content terms of a text (stop words, negation cues and generic words removed)."""
    out = []
    for w in words(text):
        if w in STOPWORDS or w in NEGATION_CUES or w in GENERIC or w.isdigit():
            continue
        n = norm(w)
        if n in GENERIC or n in STOPWORDS:
            continue
        out.append(n)
    return out


def key_terms(text: str) -> list[str]:
    """Distinct content terms of a fact, in order."""
    return list(dict.fromkeys(content_terms(text)))


def needed(n: int, threshold: float = THRESHOLD) -> int:
    return max(1, math.ceil(threshold * n - 1e-9)) if n else 0


_CLAUSE_SPLIT = re.compile(r"(?:[.!?](?:\s|$))|\n|•|\u2022|\s-\s|\|")


def content_lines(text: str) -> str:
    """The summary without meta lines (triage, red flags, unanswered, ...), which are not history."""
    return "\n".join(ln for ln in text.splitlines() if not META_LABELS.match(ln.lstrip("#*-• ")))


def split_clauses(text: str) -> list[str]:
    """Clauses: sentence ends, new lines, bullets. ';' and ',' stay inside a clause, so a list under
    "negatives:" keeps its polarity ("pertinent negatives: cough; fever")."""
    return [c.strip(" -*:\t") for c in _CLAUSE_SPLIT.split(content_lines(text)) if c and c.strip(" -*:\t")]


_SCAN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[:;,]")
_VALUE_NEG = re.compile(r"\b([a-z][a-z /-]{1,40}?)\s*:\s*(?:no|none|denies|denied|never|negative|nil)\b(?!\s+[a-z]+\s*:)")


def _scan(clause: str) -> list[tuple[str, bool, int]]:
    """(word, negated?, part index) for every word of a clause, by a left-to-right cue scan.

    A negation cue turns negation on, an affirmation cue turns it off. ``label: no`` is read as
    ``no label`` ("smoking: no"). A ``label:`` starts a new scope (negation off) unless the label
    itself is a cue ("negatives: a; b" keeps both negated). ``;`` ends a negation that did not come
    from such a list header ("does not smoke; drinks wine"). ``,`` and ``;`` start a new part.
    """
    text = clause.lower().replace("’", "'")
    for pat, rep in _PHRASES:
        text = pat.sub(rep, text)
    text = _VALUE_NEG.sub(lambda m: f"no {m.group(1)}", text)
    toks = _SCAN_RE.findall(text)
    out: list[tuple[str, bool, int]] = []
    neg, base, part = False, False, 0  # base: polarity set by a list header ("negatives:")
    for i, t in enumerate(toks):
        if t in (",", ";"):
            part += 1
            if t == ";":
                neg = base
            continue
        if t == ":":
            continue
        w = t[:-2] if t.endswith("'s") else t
        is_label = i + 1 < len(toks) and toks[i + 1] == ":"
        if w in NEGATION_CUES:
            neg = True
            if is_label:
                base = True
            continue
        if w in AFFIRMATION_CUES:
            neg = False
            if is_label:
                base = False
            continue
        if is_label:
            neg = base = False
        out.append((w, neg, part))
    return out


def polar_terms(clause: str) -> list[tuple[str, bool]]:
    """(normalized term, negated?) for each content word of a clause (see ``_scan``)."""
    out: list[tuple[str, bool]] = []
    for w, neg, _part in _scan(clause):
        if w in STOPWORDS or w in GENERIC or w.isdigit():
            continue
        n = norm(w)
        if n in GENERIC:
            continue
        out.append((n, neg))
    return out


@dataclass
class Fact:
    text: str
    kind: str  # one of KINDS
    negated: bool = False  # the record denies it (ros_negative, "non-smoker", "no history of X")
    source: str = ""  # record field it came from

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fact kind {self.kind!r} (allowed: {', '.join(KINDS)})")
        if self.kind == "ros_negative":
            self.negated = True

    @property
    def terms(self) -> list[str]:
        return key_terms(self.text)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Match:
    matched: bool
    found: int
    needed: int
    terms: list[str]
    clause: str | None = None
    polarity_error: bool = False  # terms found, but only with the opposite polarity
    extra: dict = field(default_factory=dict)


def match_fact(fact: Fact, text: str, threshold: float = THRESHOLD) -> Match:
    """Is ``fact`` present in ``text`` (a summary) with its polarity? See the module doc.

    A parenthesis gives an alternative wording: "Polycystic ovarian syndrome (PCOS)" is present when
    either "Polycystic ovarian syndrome" or "PCOS" is."""
    m = re.match(r"^(.*?)\s*\(([^)]+)\)\s*(.*)$", fact.text)
    if m:
        alts = [Fact(f"{m.group(1)} {m.group(3)}".strip(), fact.kind, fact.negated), Fact(m.group(2), fact.kind, fact.negated)]
        results = [_match_one(a, text, threshold) for a in alts if a.terms]
        if results:
            return max(results, key=lambda r: (r.matched, r.found))
    return _match_one(fact, text, threshold)


def _match_one(fact: Fact, text: str, threshold: float) -> Match:
    terms = fact.terms
    need = needed(len(terms), threshold)
    if not terms:
        return Match(False, 0, 0, terms)
    best = Match(False, 0, need, terms)
    wrong_pol = 0
    tset = set(terms)
    for clause in split_clauses(text):
        pts = polar_terms(clause)
        good = {t for t, neg in pts if t in tset and neg == fact.negated}
        bad = {t for t, neg in pts if t in tset and neg != fact.negated}
        if len(good) > best.found:
            best = Match(len(good) >= need, len(good), need, terms, clause)
        wrong_pol = max(wrong_pol, len(bad))
        if best.matched:
            return best
    best.polarity_error = wrong_pol >= need
    return best


# ---------------------------------------------------------------- hallucinations

# summary lines that are not claims about the patient (meta / workflow)
META_LABELS = re.compile(
    r"^\s*(triage|red flags?|urgency|unanswered|not asked|open questions|concerns?|approved|edited|summary|"
    r"generated|disclaimer|note|plan|advice|next steps?|session|consultation|date)\b",
    re.I,
)
PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")  # chatdoc.privacy placeholders ("<PERSON_1>")
NON_CLAIM = re.compile(
    r"\b(none|not (?:reported|asked|known|discussed|obtained|recorded|provided|stated|assessed)|unknown|n/?a|"
    r"nil|no information|not documented|pending|to be determined|unanswered|false|true)\b",
    re.I,
)
_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z /()&-]{1,40}:\s*")


def summary_claims_polar(summary_text: str) -> list[tuple[str, bool]]:
    """(claim, negated?) for each claim of a rendered summary: clauses split on , ; and/or, labels
    stripped; polarity from ``_scan`` over the whole clause ("negatives: a; b" -> both negated)."""
    claims: list[tuple[str, bool]] = []
    for clause in split_clauses(summary_text):
        scanned = _scan(clause)
        parts = re.split(r"[,;]", clause)
        for pi, part in enumerate(parts):
            pol = [(norm(w), neg) for w, neg, p in scanned if p == pi]
            for sub in re.split(r"\band\b|\bor\b", part):
                sub = _LABEL.sub("", _LABEL.sub("", sub)).strip()
                sub = PLACEHOLDER.sub("", sub).strip()  # a redacted identifier is not a clinical claim
                if not sub or META_LABELS.match(sub) or (NON_CLAIM.search(sub) and len(key_terms(sub)) <= 2):
                    continue
                kt = key_terms(sub)
                if kt:
                    negs = [neg for n, neg in pol if n in kt]
                    claims.append((sub, any(negs)))
    return claims


def summary_claims(summary_text: str) -> list[str]:
    return [c for c, _neg in summary_claims_polar(summary_text)]


def unsupported_claims(summary_text: str, said: list[str], threshold: float = SUPPORT_THRESHOLD,
                       denied_questions: list[str] | None = None) -> list[dict]:
    """Claims of the summary whose key terms are mostly absent from what the patient said.

    ``denied_questions``: assistant questions the patient answered with a denial ("No ...", "Not that I
    know of."); their terms support *negated* claims only ("Negatives: neck stiffness" after "Any neck
    stiffness?" -> "Not that I know of.").
    """
    said_terms: set[str] = set()
    for s in said:
        said_terms.update(content_terms(s))
    denied_terms: set[str] = set()
    for q in denied_questions or []:
        denied_terms.update(content_terms(q))
    out = []
    for claim, neg in summary_claims_polar(summary_text):
        terms = key_terms(claim)
        support = said_terms | denied_terms if neg else said_terms
        hit = sum(1 for t in terms if t in support)
        if hit < needed(len(terms), threshold):
            out.append({"claim": claim, "negated": neg, "terms": terms, "supported_terms": hit})
    return out


def coverage(facts: list[Fact], summary_text: str, threshold: float = THRESHOLD) -> dict:
    """Share of facts present in the summary, overall and per kind, with the per-fact detail."""
    per_kind: dict[str, dict] = {}
    detail = []
    for f in facts:
        m = match_fact(f, summary_text, threshold)
        k = per_kind.setdefault(f.kind, {"covered": 0, "total": 0})
        k["total"] += 1
        k["covered"] += int(m.matched)
        detail.append(
            {"fact": f.text, "kind": f.kind, "negated": f.negated, "covered": m.matched, "found": m.found,
             "needed": m.needed, "polarity_error": m.polarity_error}
        )
    n = len(facts)
    covered = sum(1 for d in detail if d["covered"])
    return {"coverage": (covered / n) if n else None, "covered": covered, "total": n, "per_kind": per_kind, "facts": detail}


_Q_SPLIT = re.compile(r"(?<=[?])\s+|(?<=[.!])\s+")


def questions_in(text: str) -> list[str]:
    """Question sentences of an assistant message."""
    return [s.strip() for s in _Q_SPLIT.split(text) if s.strip().endswith("?")]


def repeated_questions(questions: list[str], threshold: float = 0.7) -> list[tuple[str, str]]:
    """Pairs (earlier, later) of questions whose content terms overlap (Jaccard) >= threshold."""
    seen: list[tuple[str, set[str]]] = []
    reps = []
    for q in questions:
        t = set(content_terms(q))
        if not t:
            continue
        for prev, pt in seen:
            if len(t & pt) / len(t | pt) >= threshold:
                reps.append((prev, q))
                break
        else:
            seen.append((q, t))
    return reps
