"""ConText for patient chat: is a finding negated, hedged, historical, hypothetical, asked about, someone else's?

This is the one negation/context implementation of the project. It follows the ConText algorithm (Harkema H,
Dowling JN, Thornblade T, Chapman WW. "ConText: An algorithm for determining negation, experiencer, and temporal
status from clinical reports." J Biomed Inform 2009;42(5):839-851), an extension of NegEx:

1. The turn is normalised (lower case, straight quotes, apostrophes removed: "don't" -> "dont", which the spaCy
   tokenizer splits into "do" + "nt"; "2yrs" -> "2 yrs"), keeping a map back to the original characters, and
   split into sentences (:func:`chatdoc.clinical.nlp.get_nlp`'s ``senter`` plus every . ? ! and new line).
2. Trigger terms (``data/context_rules.yaml``: spaCy Matcher token patterns, validated by spaCy's
   :class:`~spacy.matcher.Matcher` when loaded, matched by :class:`_TokenMatcher`, which indexes them by first word
   and is ~10x faster than spaCy's Matcher on these ~250 patterns) are found in the turn. Each has a category
   (NEGATED_EXISTENCE, POSSIBLE_EXISTENCE, PROBABLE_NEGATED_EXISTENCE, HYPOTHETICAL, HISTORICAL, CURRENT, FAMILY,
   OTHER, FIRST_PERSON, THIRD_PERSON) and a direction (FORWARD, BACKWARD, BIDIRECTIONAL,
   TERMINATE, PSEUDO). A match inside a longer match is dropped (longest match wins, as in medspaCy), except that
   a pronoun ("I", "my", "he") survives inside a trigger of another property ("since I was a kid").
3. PSEUDO triggers block the triggers they overlap: "not sure", "no better", "didn't help", "never had pain like
   this", and inability, which is a symptom rather than a denial ("I can't breathe", "couldn't move my arm",
   "not waking up", "no feeling in my legs").
4. Each trigger's scope runs from the trigger to the end (FORWARD) or start (BACKWARD) of its sentence, limited to
   a window of words (8 by default; per category and per rule in the YAML), and cut by TERMINATE cues ("but",
   "apart from", "and now", "which", ";", lay "cos", "just", ...) and by any other trigger of the same property
   (existence: negated/possible; temporality: historical/current/hypothetical; experiencer: family/other/first
   person/third person) -- ConText's "another trigger of a different category ends the scope", applied within a
   property so that "I don't think I have a fever" is not cut by "I". The beginning of a question clause cuts
   every scope.
5. A span (a finding given by the caller, in original character offsets) takes the category of every trigger
   whose scope overlaps it. Triggers inside the span count too ("my neck isn't stiff"). Conflicts within a
   property go to the nearest trigger (for who it is about: the nearest one before the span first).

Beyond the paper, for chat:

* answers: "chest pain? nope" negates the question before it; "X? yes" makes it a report, not a question;
* time cues are resolved against now: more than ~4 weeks ago, a year before this one, "as a kid",
  "when I was pregnant with my first" -> historical (``when`` = the cue); "this morning", "3 days ago",
  "since Monday", "for 2 weeks", "started 2 years ago" -> current;
* in an allergy context ("allergic", "penicillin", ... in the sentence or the one before) "I get a rash" /
  "gives me a rash" is a conditional reaction (hypothetical) and "gave me" / "last time ... came out in" is
  historical;
* ``asked_about``: the span lies in a question the patient asks (a "?" sentence, or one opening with a question
  word or auxiliary + subject), from the question word on ("I've had chest pain since Monday, is that bad?":
  chest pain is reported, not asked);
* experiencer: relatives are ``family``; partners, friends, colleagues, "someone at work" are ``other`` (husband,
  wife and partner are not family for family-history purposes); "he"/"she" refer to the last person named in the
  turn. A carer's "my son" is reported as family like any other relative: the caller decides who the patient is.
  ``speaker`` is set when the nearest person cue is first person ("I", "my", "me").
* "I don't think it's a fever" is a PROBABLE negation: both ``negated`` and ``possible`` are set;
* resolved is not absent: "it went away", "no longer", "not there anymore" do not negate (a face droop that went
  away may be a TIA); medspaCy's "resolved" rules are disabled for that reason.

Performance: the rules and matcher are built once (:func:`_engine`, cached) and each turn's analysis is cached by
text (:func:`_analyse`); a 300-character turn with 5 spans takes about 1.5-2.5 ms uncached after warm-up (about
1 ms of it is the spaCy pipeline), ~0.03 ms cached.

Data licence: the first section of ``data/context_rules.yaml`` is converted from medspaCy 1.3.1
``resources/en/context_rules.json``, MIT License, Copyright (c) 2020 medspacy (full text in the YAML header).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).parent / "data" / "context_rules.yaml"


@dataclass(frozen=True)
class Context:
    negated: bool = False
    possible: bool = False  # hedged: "I think I might have", "maybe", "not sure if"
    historical: bool = False  # a past episode that is over / past history
    when: str | None = None  # the time cue text for historical ("10 years ago", "in 2015", "as a kid")
    hypothetical: bool = False  # "if it gets worse", "what if", "in case"
    asked_about: bool = False  # the span is inside a question the patient asks
    experiencer: str = "patient"  # "patient" | "family" | "other"
    person: str | None = None  # the person cue ("mum", "my friend") when experiencer != "patient"
    speaker: bool = False  # said of the speaker in first person ("I", "my", "me")
    cues: tuple[str, ...] = ()  # the trigger texts that applied


# ---------------------------------------------------------------------------------------------------- rules

_GROUP = {
    "NEGATED_EXISTENCE": "existence", "PROBABLE_NEGATED_EXISTENCE": "existence", "POSSIBLE_EXISTENCE": "existence",
    "HYPOTHETICAL": "temporality", "HISTORICAL": "temporality", "CURRENT": "temporality", "TIME": "temporality",
    "FAMILY": "experiencer", "OTHER": "experiencer", "FIRST_PERSON": "experiencer", "THIRD_PERSON": "experiencer",
    "ALLERGY": "gate", "TERMINATE": "terminate",
}
_PRONOUNS = {"FIRST_PERSON", "THIRD_PERSON"}
_DIRECTIONS = {"FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO", "NONE"}
_NEG = {"NEGATED_EXISTENCE", "PROBABLE_NEGATED_EXISTENCE"}
_INTERJECTIONS = {"no", "nope", "nah", "naw"}
_SUBJECT_AFTER_INTERJECTION = {"i", "it", "its", "he", "she", "we", "they", "you", "thats", "that", "theres", "im"}
_SCOPE_BREAK_PUNCT = {",", ".", "!", "?", ";", "…", "..", "..."}
_SENT_END = re.compile(r"^[.?!…]+$")


@dataclass(frozen=True)
class Rule:
    index: int
    category: str
    literal: str
    direction: str
    window: int
    forward_window: int = 8
    final: bool = False
    requires: str | None = None
    when: bool = False
    stop: frozenset[str] = frozenset()
    terminates: frozenset[str] | None = None
    source: str = "chatdoc"


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    patterns: tuple[list[dict], ...]
    questions: dict
    answers: dict


def _plain(s: str) -> str:
    return s.lower().replace("\u2019", "").replace("'", "")


_OP = re.compile(r"^(.+?)(\?|\*|\+|\{\d*,\d*\})?$")
_NUM_RX = (r"\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
           r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred")


def _compile_dsl(text: str) -> list[dict]:
    """The YAML's token language -> a spaCy Matcher pattern.

    Words separated by spaces; ``a|b`` one of; suffix ``?`` optional (also ``*``, ``+``, ``{0,3}``); ``_`` any
    word; ``#`` a number; ``NOT`` = not|nt."""
    out: list[dict] = []
    for raw in text.split():
        m = _OP.match(raw)
        body, op = (m.group(1), m.group(2)) if m else (raw, None)
        if body == "_":
            tok: dict = {"IS_ALPHA": True}
        elif body == "#":
            tok = {"LIKE_NUM": True}
        else:
            alts: list[str] = []
            for a in body.split("|"):
                for b in (["not", "nt"] if a == "NOT" else [_plain(a)]):
                    if b and b not in alts:
                        alts.append(b)
            if "#" in alts or "_" in alts:  # a word list mixed with "any number" / "any word"
                rx = [_NUM_RX if a == "#" else r"[a-z]+" if a == "_" else re.escape(a) for a in alts]
                tok = {"LOWER": {"REGEX": "^(?:" + "|".join(rx) + ")$"}}
            else:
                tok = {"LOWER": alts[0]} if len(alts) == 1 else {"LOWER": {"IN": alts}}
        if op:
            tok["OP"] = op
        out.append(tok)
    return out


def _literal_pattern(literal: str, tokenizer) -> list[dict]:
    return [{"LOWER": t.lower_} for t in tokenizer(_plain(literal)) if not t.is_space]


def load_rules(path: Path = RULES_PATH, tokenizer=None) -> RuleSet:
    """Read and check the YAML rule file (enabled rules only)."""
    import yaml

    if tokenizer is None:
        from chatdoc.clinical.nlp import get_nlp

        tokenizer = get_nlp().tokenizer
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    windows = {str(k): int(v) for k, v in (data.get("windows") or {}).items()}
    rules: list[Rule] = []
    patterns: list[list[dict]] = []
    for i, r in enumerate(data["rules"]):
        if r.get("disabled"):
            continue
        cat, direction = str(r["category"]).upper(), str(r["direction"]).upper()
        if cat not in _GROUP or direction not in _DIRECTIONS:
            raise ValueError(f"context rule {i} ({r.get('literal')!r}): bad category/direction {cat}/{direction}")
        pat = r.get("pattern")
        if pat is None:
            pattern = _literal_pattern(str(r["literal"]), tokenizer)
        elif isinstance(pat, str):
            pattern = _compile_dsl(pat)
        else:
            pattern = pat
        if not pattern:
            raise ValueError(f"context rule {i} ({r.get('literal')!r}): empty pattern")
        term = r.get("terminates")
        rules.append(Rule(
            index=len(rules), category=cat, literal=str(r["literal"]), direction=direction,
            window=int(r.get("window") or windows.get(cat, 8)),
            forward_window=int(r["window"] if r.get("window") and direction != "BIDIRECTIONAL"
                               else windows.get(cat, 8)),
            final=bool(r.get("final", False)),
            requires=(str(r["requires"]).upper() if r.get("requires") else None), when=bool(r.get("when", False)),
            stop=frozenset(_plain(str(w)) for w in r.get("stop") or ()),
            terminates=frozenset(str(t).lower() for t in term) if term else None,
            source=str(r.get("source", "chatdoc"))))
        patterns.append(pattern)
    q = data.get("questions") or {}
    questions = {k: ([_plain(str(x)) for x in v] if isinstance(v, list) else v) for k, v in q.items()}
    answers = {str(k): [_plain(str(x)).split() for x in v] for k, v in (data.get("answers") or {}).items()}
    return RuleSet(tuple(rules), tuple(patterns), questions, answers)


_INF = 10**6
_REPEAT = re.compile(r"^\{(\d*),(\d*)\}$|^\{(\d+)\}$")


class _TokenMatcher:
    """Finds spaCy Matcher token patterns in a Doc, longest match per (pattern, start).

    The patterns are validated by spaCy's own :class:`~spacy.matcher.Matcher` when the engine is built, but matched
    here: with every pattern indexed by the words it can start with, a turn is matched in a fraction of a
    millisecond (spaCy's Matcher tries each of the ~250 patterns at every token: 2-5 ms a turn). Only the
    attributes the rule file uses are supported: LOWER (a string, IN, REGEX), ORTH, LIKE_NUM, IS_ALPHA, IS_PUNCT,
    and the operators ?, *, +, {n,m}."""

    def __init__(self, patterns: list[list[dict]]) -> None:
        self.slots: list[list[tuple[object, int, int]]] = []
        self.index: dict[str, list[int]] = {}
        self.anywhere: list[int] = []
        for pid, pattern in enumerate(patterns):
            slots = [self._slot(tok) for tok in pattern]
            self.slots.append(slots)
            first: set[str] = set()
            indexable = False
            for pred, lo, _ in slots:
                if not isinstance(pred, frozenset):
                    break
                first |= pred
                if lo > 0:
                    indexable = True
                    break
            if indexable:
                for w in first:
                    self.index.setdefault(w, []).append(pid)
            else:
                self.anywhere.append(pid)

    @staticmethod
    def _slot(tok: dict) -> tuple[object, int, int]:
        tok = dict(tok)
        op = tok.pop("OP", None)
        lo, hi = 1, 1
        if op == "?":
            lo, hi = 0, 1
        elif op == "*":
            lo, hi = 0, _INF
        elif op == "+":
            lo, hi = 1, _INF
        elif op and (m := _REPEAT.match(op)):
            if m.group(3):
                lo = hi = int(m.group(3))
            else:
                lo, hi = int(m.group(1) or 0), int(m.group(2)) if m.group(2) else _INF
        elif op:
            raise ValueError(f"unsupported OP {op!r}")
        if not tok:
            return ("ANY", lo, hi)
        if len(tok) != 1:
            raise ValueError(f"one attribute per token please: {tok}")
        (attr, val), = tok.items()
        if attr in ("LOWER", "ORTH"):
            if isinstance(val, str):
                return (frozenset([val.lower()]) if attr == "LOWER" else ("ORTH", frozenset([val])), lo, hi)
            if isinstance(val, dict) and set(val) == {"IN"}:
                if attr == "ORTH":
                    return (("ORTH", frozenset(val["IN"])), lo, hi)
                return (frozenset(str(v).lower() for v in val["IN"]), lo, hi)
            if isinstance(val, dict) and set(val) == {"REGEX"} and attr == "LOWER":
                return (re.compile(val["REGEX"]), lo, hi)
        elif attr in ("LIKE_NUM", "IS_ALPHA", "IS_PUNCT") and isinstance(val, bool):
            return ((attr, val), lo, hi)
        raise ValueError(f"unsupported token pattern {tok}")

    def __call__(self, doc) -> list[tuple[int, int, int]]:
        n = len(doc)
        low = [t.lower_ for t in doc]
        orth = [t.text for t in doc]
        flags = {"LIKE_NUM": [t.like_num for t in doc], "IS_ALPHA": [t.is_alpha for t in doc],
                 "IS_PUNCT": [t.is_punct for t in doc]}

        def ok(pred, i: int) -> bool:
            if isinstance(pred, frozenset):
                return low[i] in pred
            if pred == "ANY":
                return True
            if isinstance(pred, re.Pattern):
                return pred.search(low[i]) is not None
            kind, val = pred
            if kind == "ORTH":
                return orth[i] in val
            return flags[kind][i] == val

        def longest(slots, k: int, i: int) -> int:
            if k == len(slots):
                return i
            pred, lo, hi = slots[k]
            best, count, j = -1, 0, i
            ends = []
            if lo == 0:
                ends.append(i)
            while count < hi and j < n and ok(pred, j):
                count += 1
                j += 1
                if count >= lo:
                    ends.append(j)
            for e in reversed(ends):  # the longest first
                r = longest(slots, k + 1, e)
                if r > best:
                    best = r
            return best

        out = []
        for i in range(n):
            for pid in self.index.get(low[i], ()):
                e = longest(self.slots[pid], 0, i)
                if e > i:
                    out.append((pid, i, e))
            for pid in self.anywhere:
                e = longest(self.slots[pid], 0, i)
                if e > i:
                    out.append((pid, i, e))
        return out


@dataclass(frozen=True)
class _Engine:
    nlp: object
    matcher: _TokenMatcher
    rules: RuleSet


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    from spacy.matcher import Matcher

    from chatdoc.clinical.nlp import get_nlp

    nlp = get_nlp()
    rs = load_rules(tokenizer=nlp.tokenizer)
    check = Matcher(nlp.vocab, validate=True)  # every pattern must be a valid spaCy Matcher pattern
    for rule, pattern in zip(rs.rules, rs.patterns, strict=True):
        check.add(f"ctx{rule.index}", [pattern])
    return _Engine(nlp, _TokenMatcher(list(rs.patterns)), rs)


# ------------------------------------------------------------------------------------------- normalisation

_APOS = "'\u2019\u2018\u02bc`\u00b4"
_QUOTES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"'}


def _normalise(text: str) -> tuple[str, list[int]]:
    """(normalised text, for each of its characters the offset in ``text``)."""
    out: list[str] = []
    pos: list[int] = []
    prev = ""
    for i, ch in enumerate(text):
        ch = _QUOTES.get(ch, ch)
        if ch == "'":
            continue
        lc = ch.lower()
        if len(lc) != 1:
            lc = ch
        if lc.isalpha() and prev.isdigit():  # "2yrs" -> "2 yrs", "10am" -> "10 am"
            out.append(" ")
            pos.append(i)
        out.append(lc)
        pos.append(i)
        prev = lc
    return "".join(out), pos


# ----------------------------------------------------------------------------------------------- analysis

@dataclass
class _Trig:
    rule: Rule
    start: int  # token offsets
    end: int
    category: str
    sent: int
    text: str  # original text
    fwd: tuple[int, int] = (0, 0)  # scope after the trigger [end, x)
    bwd: tuple[int, int] = (0, 0)  # scope before it [x, start)
    antecedent: _Trig | None = None

    @property
    def group(self) -> str:
        return _GROUP[self.category]


@dataclass
class _Turn:
    n_tokens: int
    tok_start: list[int]  # character offsets in the normalised text
    tok_end: list[int]
    sents: list[tuple[int, int]]
    sent_of: list[int]
    triggers: list[_Trig]
    questions: dict[int, tuple[int, str]] = field(default_factory=dict)  # sentence -> (question start token, cue)
    pos: list[int] = field(default_factory=list)
    lowers: list[str] = field(default_factory=list)  # token texts (normalised)


def _sentences(doc) -> list[tuple[int, int]]:
    n = len(doc)
    starts = {0}
    for s in doc.sents:
        starts.add(s.start)
    for i, t in enumerate(doc):
        if i + 1 < n and (_SENT_END.match(t.text) or (t.is_space and "\n" in t.text)):
            starts.add(i + 1)
    fixed = set()
    for s in starts:  # a sentence never starts with its predecessor's full stop or with spaces
        while s < n and (_SENT_END.match(doc[s].text) or doc[s].is_space):
            s += 1
        if s < n:
            fixed.add(s)
    fixed.add(0)
    bounds = sorted(fixed)
    return [(s, e) for s, e in zip(bounds, bounds[1:] + [n]) if e > s]


def _is_word(tok) -> bool:
    return not (tok.is_punct or tok.is_space)


_UNIT_DAYS = {
    "minute": 1 / 1440, "minutes": 1 / 1440, "min": 1 / 1440, "mins": 1 / 1440, "hour": 1 / 24, "hours": 1 / 24,
    "hr": 1 / 24, "hrs": 1 / 24, "day": 1, "days": 1, "week": 7, "weeks": 7, "wk": 7, "wks": 7, "month": 30,
    "months": 30, "mth": 30, "mths": 30, "year": 365, "years": 365, "yr": 365, "yrs": 365, "decade": 3650,
    "decades": 3650,
}
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "couple": 2, "few": 3,
                 "several": 4}
_HISTORICAL_DAYS = 30  # "more than ~4 weeks ago" is history
_ONGOING = {"started", "start", "starts", "starting", "began", "begun", "begin", "since", "for", "been", "ongoing",
            "kicked", "come", "came"}
_READINGS = {"temp", "temperature", "fever", "bp", "pressure", "sats", "saturation", "saturations", "oxygen", "o2",
             "pulse", "rate", "sugar", "sugars", "glucose", "reading", "level", "levels", "score", "thermometer",
             "weight", "was", "is", "it", "its", "stuck", "peaked", "hit", "around", "about", "stayed"}
_NOT_AGE_NEXT = {"am", "pm", "oclock", "o", ":", "degrees", "c", "%", "bpm", "mmhg", ".", "percent", "kg", "lbs"}
_PERIOD_CURRENT = {"night", "week", "weekend", "fortnight", "monday", "tuesday", "wednesday", "thursday", "friday",
                   "saturday", "sunday"}


_MONTHS = {m: i + 1 for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                            "september", "october", "november", "december"))}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9


def today() -> date:
    """Today's date, for resolving "in 2015" / "in March" (a function so tests can pin it)."""
    return date.today()


def _number(word: str) -> float | None:
    if word.replace(".", "", 1).isdigit():
        return float(word)
    return _NUMBER_WORDS.get(word)


def _classify_time(doc, start: int, end: int, sent: tuple[int, int]) -> str | None:
    """A TIME cue -> HISTORICAL (more than ~4 weeks ago, an earlier year, an age), CURRENT, or None (not a time)."""
    words = [t.lower_ for t in doc[start:end]]
    before = [t.lower_ for t in doc[max(sent[0], start - 3):start]]
    ongoing = any(w in _ONGOING for w in before) or words[0] in ("for", "since", "over")
    if words[0] in ("at", "aged"):  # an age: "had a heart attack at 50"
        n = _number(words[-1])
        nxt = doc[end].lower_ if end < sent[1] else ""
        if n is None or n != int(n) or not 13 <= n <= 110 or nxt in _NOT_AGE_NEXT:
            return None
        if any(t.lower_ in _READINGS for t in doc[max(sent[0], start - 3):start]):
            return None
        return "HISTORICAL"
    if words[-1] in ("ago", "back", "previously", "before", "earlier"):
        unit = next((w for w in words if w in _UNIT_DAYS), None)
        if unit is None:
            return None
        amount = None
        for w in words:
            if w in _UNIT_DAYS:
                break
            v = _number(w)
            if v is not None:
                amount = v
        if amount is None:  # "years ago", "weeks ago", "some days ago"
            amount = 2 if unit.endswith("s") else 1
        if ongoing:
            return "CURRENT"
        return "HISTORICAL" if amount * _UNIT_DAYS[unit] > _HISTORICAL_DAYS else "CURRENT"
    month = next((_MONTHS[w] for w in words if w in _MONTHS), None)
    if month is not None:  # "in March": the latest March before today
        if ongoing:
            return "CURRENT"
        return "HISTORICAL" if (today().month - month) % 12 >= 2 else "CURRENT"
    nums = [w for w in words if w.isdigit()]
    if nums and words[-1].isdigit():  # "in 2015", "since 2019"
        year = int(nums[-1])
        if not 1900 <= year <= 2100:
            return None
        if words[0] == "since" or ongoing:
            return "CURRENT"
        return "HISTORICAL" if year < today().year else "CURRENT"
    # "last year", "last week", "for the last year"
    if ongoing:
        return "CURRENT"
    return "CURRENT" if words[-1] in _PERIOD_CURRENT else "HISTORICAL"


def _is_final(doc, end: int, sent: tuple[int, int], term_starts: set[int]) -> bool:
    j = end
    while j < sent[1] and doc[j].is_space:
        j += 1
    return j >= sent[1] or doc[j].is_punct or j in term_starts


def _orig(pos: list[int], cs: int, ce: int) -> tuple[int, int]:
    if not pos:
        return 0, 0
    return pos[min(cs, len(pos) - 1)], pos[max(min(ce, len(pos)) - 1, 0)] + 1


def _contains(a: _Trig, b: _Trig) -> bool:
    """a strictly contains b."""
    return a.start <= b.start and b.end <= a.end and (a.end - a.start) > (b.end - b.start)


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


@lru_cache(maxsize=4096)
def _analyse(text: str) -> _Turn:
    eng = _engine()
    norm, pos = _normalise(text)
    doc = eng.nlp(norm)
    n = len(doc)
    sents = _sentences(doc) if n else []
    sent_of = [0] * n
    for si, (s, e) in enumerate(sents):
        for i in range(s, e):
            sent_of[i] = si
    turn = _Turn(n, [t.idx for t in doc], [t.idx + len(t.text) for t in doc], sents, sent_of, [], pos=pos,
                 lowers=[t.lower_ for t in doc])
    if not n:
        return turn

    def orig_text(s: int, e: int) -> str:  # whole words of the original ("DON'T", not "N'T")
        a, b = _orig(pos, doc[s].idx, doc[e - 1].idx + len(doc[e - 1].text))
        while a > 0 and (text[a - 1].isalnum() or text[a - 1] in _APOS) and text[a].isalnum():
            a -= 1
        while b < len(text) and (text[b].isalnum() or text[b] in _APOS) and text[b - 1].isalnum():
            b += 1
        return text[a:b]

    # 1. raw matches
    raw: list[_Trig] = []
    for pid, s, e in eng.matcher(doc):
        rule = eng.rules.rules[pid]
        raw.append(_Trig(rule, s, e, rule.category, sent_of[s], ""))
    term_starts = {m.start for m in raw if m.rule.direction == "TERMINATE"}
    gates: dict[str, set[int]] = {}
    for m in raw:
        if m.rule.direction == "NONE":
            gates.setdefault(m.category, set()).add(m.sent)
    found: list[_Trig] = []
    for m in raw:
        r = m.rule
        if r.direction == "NONE":
            continue
        sent = sents[m.sent]
        if m.end > sent[1]:  # a trigger never spans sentences
            continue
        if r.final and not _is_final(doc, m.end, sent, term_starts):
            continue
        if r.requires and not (gates.get(r.requires, set()) & {m.sent, m.sent - 1}):
            continue
        if m.category == "TIME":
            cat = _classify_time(doc, m.start, m.end, sent)
            if cat is None:
                continue
            m.category = cat
        found.append(m)
    # 2. longest match wins (a pronoun survives inside a trigger of another property)
    kept: list[_Trig] = []
    for m in found:
        if any(_contains(o, m) and not (m.category in _PRONOUNS and o.group != "experiencer") for o in found):
            continue
        kept.append(m)
    # 3. pseudo-triggers block what they overlap
    pseudo = [m for m in kept if m.rule.direction == "PSEUDO"]
    live: list[_Trig] = []
    for m in kept:
        if m.rule.direction not in ("PSEUDO", "TERMINATE") and m.category not in _PRONOUNS and any(
                _overlaps(m.start, m.end, p.start, p.end) for p in pseudo):
            continue
        live.append(m)
    # de-duplicate identical (category, direction, span) triggers
    seen = set()
    uniq: list[_Trig] = []
    for m in sorted(live, key=lambda t: (t.start, -t.end, t.rule.index)):
        key = (m.category, m.rule.direction, m.start, m.end)
        if key in seen:
            continue
        seen.add(key)
        m.text = orig_text(m.start, m.end)
        uniq.append(m)
    live = uniq

    # 4. questions, answers
    rs = eng.rules
    answered: set[int] = set()
    synthetic: list[_Trig] = []
    for si in range(1, len(sents)):
        kind, a_end = _answer(doc, sents[si], rs.answers)
        if kind and _ends_with_question(doc, sents[si - 1]):
            answered.add(si - 1)
            if kind == "no":
                s0, e0 = sents[si - 1]
                rule = Rule(-1, "NEGATED_EXISTENCE", "answer", "BACKWARD", 8)
                t = _Trig(rule, sents[si][0], a_end, "NEGATED_EXISTENCE", si - 1, orig_text(sents[si][0], a_end))
                t.bwd = (_window_back(doc, e0, s0, 8), e0)
                t.fwd = (t.end, t.end)
                synthetic.append(t)
    for si, sent in enumerate(sents):
        if si in answered:
            continue
        q = _question_start(doc, sent, rs.questions)
        if q is not None:
            turn.questions[si] = (q, orig_text(q, min(sent[1], q + 2)) if q < sent[1] else "?")

    # 5. scopes
    for t in live:
        if t.rule.direction in ("TERMINATE", "PSEUDO"):
            continue
        _set_scope(doc, t, sents[t.sent], live, turn.questions.get(t.sent))
    last_person: _Trig | None = None
    for t in live:  # "he"/"she" -> the last person named before it in the turn
        if t.category in ("FAMILY", "OTHER"):
            last_person = t
        elif t.category == "THIRD_PERSON":
            t.antecedent = last_person
    turn.triggers = [t for t in live if t.rule.direction not in ("TERMINATE", "PSEUDO")] + synthetic
    return turn


def _window_back(doc, end: int, floor: int, window: int) -> int:
    words, i = 0, end
    while i > floor:
        if _is_word(doc[i - 1]):
            words += 1
            if words > window:
                break
        i -= 1
    return i


def _set_scope(doc, t: _Trig, sent: tuple[int, int], live: list[_Trig], question: tuple[int, str] | None) -> None:
    s0, s1 = sent
    group = t.group
    direction = t.rule.direction
    f_limit, b_limit = s1, s0
    for c in live:
        if c is t or c.sent != t.sent:
            continue
        d = c.rule.direction
        if d == "TERMINATE":
            if c.rule.terminates is not None and group not in c.rule.terminates:
                continue
        elif c.group != group or (d != "PSEUDO" and c.category == t.category):
            continue
        if c.start >= t.end:
            f_limit = min(f_limit, c.start)
        if c.end <= t.start:
            b_limit = max(b_limit, c.end)
        elif c.start < t.start < c.end and d == "TERMINATE":  # "and i": the clause starts at "and"
            b_limit = max(b_limit, c.start)
    if question is not None:
        q = question[0]
        if q >= t.end:
            f_limit = min(f_limit, q)
        elif q <= t.start:
            b_limit = max(b_limit, q)
    t.fwd = (t.end, t.end)
    t.bwd = (t.start, t.start)
    if direction in ("FORWARD", "BIDIRECTIONAL"):
        nxt = t.end
        while nxt < f_limit and doc[nxt].is_space:
            nxt += 1
        empty = False
        if t.category in _NEG and nxt < f_limit and doc[nxt].text in _SCOPE_BREAK_PUNCT:
            empty = True  # "no, I have a headache": an interjection
        if (doc[t.start:t.end].text in _INTERJECTIONS and nxt < f_limit
                and doc[nxt].lower_ in _SUBJECT_AFTER_INTERJECTION):
            empty = True  # "no i have a headache"
        if not empty:
            words, i = 0, t.end
            while i < f_limit:
                if _is_word(doc[i]):
                    words += 1
                    if words > t.rule.forward_window:
                        break
                i += 1
            t.fwd = (t.end, i)
    if direction in ("BACKWARD", "BIDIRECTIONAL"):
        words, i = 0, t.start
        while i > b_limit:
            tok = doc[i - 1]
            if tok.lower_ in t.rule.stop:
                break
            if _is_word(tok):
                words += 1
                if words > t.rule.window:
                    break
            i -= 1
        t.bwd = (i, t.start)


def _ends_with_question(doc, sent: tuple[int, int]) -> bool:
    for i in range(sent[1] - 1, sent[0] - 1, -1):
        if doc[i].is_space:
            continue
        return "?" in doc[i].text
    return False


def _answer(doc, sent: tuple[int, int], answers: dict) -> tuple[str | None, int]:
    """("no"/"yes", end token of the answer) when the sentence opens with a bare answer ("nope", "no, but ...")."""
    words = [i for i in range(sent[0], sent[1]) if not doc[i].is_space]
    for kind in ("no", "yes"):
        for ans in sorted(answers.get(kind, []), key=len, reverse=True):
            k = len(ans)
            idx = words[:k]
            if len(idx) < k or [doc[i].lower_ for i in idx] != ans:
                continue
            rest = words[k:]
            if not rest or doc[rest[0]].is_punct:
                return kind, idx[-1] + 1
    return None, 0


def _question_start(doc, sent: tuple[int, int], q: dict) -> int | None:
    """The first token of the question the patient asks in this sentence, or None."""
    aux, wh, wh_start = set(q.get("aux", ())), set(q.get("wh", ())), set(q.get("wh_at_start", ()))
    subjects, openers = set(q.get("subjects", ())), set(q.get("openers", ()))
    words = [i for i in range(sent[0], sent[1]) if _is_word(doc[i])]
    if not words:
        return None
    ends_q = _ends_with_question(doc, sent)
    first = next((i for i in words if doc[i].lower_ not in openers), words[0])

    def clause_start(i: int) -> bool:
        if i <= first:
            return True
        j = i - 1
        while j >= sent[0] and doc[j].is_space:
            j -= 1
        return j < sent[0] or doc[j].is_punct or doc[j].lower_ in ("and", "but", "so", "or", "also", "then")

    cues: list[tuple[int, bool]] = []
    for k, i in enumerate(words):
        w = doc[i].lower_
        nxt = [doc[j].lower_ for j in words[k + 1:k + 3]]
        if w in aux:
            subj = nxt[1] if nxt and nxt[0] in ("not", "nt") and len(nxt) > 1 else (nxt[0] if nxt else "")
            if w in ("ca", "wo") and not (nxt and nxt[0] == "nt"):
                continue
            if subj in subjects or (ends_q and i == first and nxt and nxt[0] not in ("not", "nt")):
                cues.append((i, clause_start(i)))
        elif w in wh and nxt:
            if w in wh_start or ends_q:
                cues.append((i, clause_start(i)))
    for phrase in q.get("phrases", ()):
        toks = phrase.split()
        for k, i in enumerate(words):
            if [doc[j].lower_ for j in words[k:k + len(toks)]] == toks:
                cues.append((i, clause_start(i)))
    if ends_q:
        at_start = [i for i, cs in cues if cs]
        if at_start:
            return min(at_start)
        if cues:
            return min(i for i, _ in cues)
        # a bare "meningitis?": asked when short and not said of oneself
        first_person = any(doc[i].lower_ in ("i", "im", "ive", "my", "me", "id") for i in words)
        if len(words) <= 3 and not first_person:
            return words[0]
        return None
    starts = [i for i, cs in cues if cs and (i == first or doc[i].lower_ in aux or doc[i].lower_ in wh_start)]
    # without "?": only a question word opening the sentence or a clause ("..., is that bad")
    starts = [i for i in starts if i == first or _after_comma(doc, i, sent)]
    return min(starts) if starts else None


def _after_comma(doc, i: int, sent: tuple[int, int]) -> bool:
    j = i - 1
    while j >= sent[0] and doc[j].is_space:
        j -= 1
    return j >= sent[0] and doc[j].text in (",", "-", "–", ":", "…")


# ------------------------------------------------------------------------------------------------ public API

def _token_range(turn: _Turn, start: int, end: int) -> tuple[int, int] | None:
    """Original character span -> token range [a, b) in the analysed turn."""
    pos = turn.pos
    if not pos or end <= start:
        return None
    ns = bisect_left(pos, start)
    ne = bisect_left(pos, end)  # first normalised char at or after the original end
    if ns >= ne:
        return None
    a = bisect_right(turn.tok_end, ns)  # first token ending after ns
    b = bisect_left(turn.tok_start, ne)  # tokens starting before ne
    if a >= b:
        return None
    return a, b


_NP_BREAK = {"be", "is", "are", "was", "were", "been", "being", "a", "an", "the", "this", "that", "it", "like", "from",
             "cause", "causing", "mean", "for", "of", "with", "to", "or", "and"}
_HAVE = {"have", "ve", "got", "feel", "felt", "keep", "am", "m", "been", "had", "has", "s"}


def _reported(turn: _Turn, q: int, a: int) -> bool:
    """Inside a question, a finding the patient says they have is reported, not asked about: "what should I do
    about MY chest pain?", "is it bad that I have a rash?"."""
    for i in range(a - 1, max(q, a - 4) - 1, -1):  # "my (bad) headache", not "my headache be [meningitis]"
        w = turn.lowers[i]
        if w == "my":
            return True
        if w in _NP_BREAK or not w.isalpha():
            break
    for i in range(max(q, a - 4), a):
        if turn.lowers[i] in ("i", "ive", "im") and i + 1 < a and turn.lowers[i + 1] in _HAVE:
            return True
    return False


def _distance(t: _Trig, a: int, b: int) -> int:
    if t.end <= a:
        return a - t.end
    if t.start >= b:
        return t.start - b
    return 0


def _covers(t: _Trig, a: int, b: int) -> bool:
    return _overlaps(t.fwd[0], t.fwd[1], a, b) or _overlaps(t.bwd[0], t.bwd[1], a, b)


def _context(turn: _Turn, a: int, b: int) -> Context:
    sents = set(turn.sent_of[a:b])
    hits = [t for t in turn.triggers if (t.sent in sents or t.rule.index == -1) and _covers(t, a, b)]
    if not hits and not any(s in turn.questions for s in sents):
        return Context()
    cues: list[str] = []

    def use(t: _Trig) -> None:
        if t.text and t.text not in cues:
            cues.append(t.text)

    negated = possible = hypothetical = historical = False
    when = None
    for t in hits:
        if t.category in _NEG:
            negated = True
            use(t)
        if t.category in ("POSSIBLE_EXISTENCE", "PROBABLE_NEGATED_EXISTENCE"):
            possible = True
            use(t)
        if t.category == "HYPOTHETICAL":
            hypothetical = True
            use(t)
    temporal = [t for t in hits if t.category in ("HISTORICAL", "CURRENT")]
    if temporal:  # the nearest time cue decides; on a tie the one after the span ("a stroke 10 years ago")
        best = min(temporal, key=lambda t: (_distance(t, a, b), 0 if t.start >= b else 1))
        if best.category == "HISTORICAL":
            historical = True
            use(best)
            timed = [t for t in temporal if t.category == "HISTORICAL" and t.rule.when]
            if timed:
                when = min(timed, key=lambda t: _distance(t, a, b)).text
        else:
            use(best)
    experiencer, person, speaker = "patient", None, False
    people = [t for t in hits if t.group == "experiencer"
              and (t.category != "THIRD_PERSON" or t.antecedent is not None)]
    third_bare = [t for t in hits if t.category == "THIRD_PERSON" and t.antecedent is None]
    if people:  # the nearest person named before the span, else the nearest after it
        best = min(people, key=lambda t: (0 if t.start < b else 1, _distance(t, a, b)))
        nearer_bare = [t for t in third_bare if (0 if t.start < b else 1, _distance(t, a, b))
                       < (0 if best.start < b else 1, _distance(best, a, b))]
        if not nearer_bare:
            if best.category == "FIRST_PERSON":
                speaker = True
            else:
                src = best.antecedent if best.category == "THIRD_PERSON" else best
                experiencer = "family" if src.category == "FAMILY" else "other"
                person = src.text.strip()
                use(best)
    asked = False
    for s in sorted(sents):
        if s in turn.questions:
            q, cue = turn.questions[s]
            if (a >= q or (turn.sent_of[a] != s and q <= turn.sents[s][0])) and not _reported(turn, q, a):
                asked = True
                if cue and cue not in cues:
                    cues.append(cue)
    return Context(negated=negated, possible=possible, historical=historical, when=when, hypothetical=hypothetical,
                   asked_about=asked, experiencer=experiencer, person=person, speaker=speaker, cues=tuple(cues))


def context_of(text: str, spans: list[tuple[int, int]]) -> list[Context]:
    """The ConText reading of each character span (a finding) of ``text``, in the order given."""
    if not spans:
        return []
    turn = _analyse(text)
    out: list[Context] = []
    for start, end in spans:
        rng = _token_range(turn, int(start), int(end))
        out.append(Context() if rng is None else _context(turn, *rng))
    return out


def warm_up() -> None:
    """Load the pipeline and build the Matcher now (first call otherwise pays ~1 s)."""
    context_of("i dont have a fever", [(13, 18)])
