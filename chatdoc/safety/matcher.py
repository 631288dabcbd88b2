"""Per-turn findings: concept matches (negation-aware), ages and vital signs, with spans in the turn.

Each turn is normalised (lower case, straight quotes, one space, spelling fixes from the rule file),
matched against every concept's patterns, and the matches are checked for negation with the windowed
NegEx from :mod:`chatdoc.safety.nlp`. Results are cached per (rule set, turn text), so re-assessing a
growing history only analyses the new turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatdoc.safety.modifiers import Found, find_ages, find_vitals
from chatdoc.safety.rules import RuleSet

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\s+|.", re.S)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_CACHE_SIZE = 2048


@dataclass(frozen=True)
class Match:
    concept: str
    start: int  # character offsets in the original turn text
    end: int
    text: str
    negated: bool


@dataclass
class TurnFindings:
    matches: list[Match] = field(default_factory=list)
    ages: list[Found] = field(default_factory=list)  # spans in the original text
    vitals: list[Found] = field(default_factory=list)


def normalise(text: str, spelling: dict[str, str]) -> tuple[str, list[int]]:
    """Lower-cased text without apostrophes ("can't" -> "cant"), one space between words, spelling fixed,
    and a map from each of its characters to the offset in the original text."""
    src = text.translate(_QUOTES)
    out: list[str] = []
    pos: list[int] = []
    for m in _TOKEN.finditer(src.lower()):
        piece = m.group()
        if piece.isspace():
            piece = " "
        else:
            piece = piece.replace("'", "")
            piece = spelling.get(piece, piece)
        width = m.end() - m.start()
        if not piece:
            continue
        for i, ch in enumerate(piece):
            out.append(ch)
            pos.append(m.start() + min(i, width - 1))
    return "".join(out), pos


def _orig(pos: list[int], start: int, end: int) -> tuple[int, int]:
    if not pos:
        return 0, 0
    return pos[min(start, len(pos) - 1)], pos[max(end - 1, 0)] + 1


# NegEx looks for cues before a span; "my neck isn't stiff" carries its negation inside the span.
_INSIDE_NEG = re.compile(r"\b(?:isn'?t|is not|aren'?t|are not|doesn'?t|does not|don'?t|do not|wasn'?t|was not|never|no longer)\b")
_PATTERN_NEG = re.compile(r"\bnot\b|\b(?:can|won|couldn|isn|doesn|don|wasn)'?t\b|\bcannot\b|\bnever\b|\bno\b|\bunable\b")


def _negated_inside(matched: str, pattern: str) -> bool:
    """A negation cue inside the matched words, unless the concept's own pattern uses negation on
    purpose (e.g. "not breathing", "can't move" are findings, not denials)."""
    return not _PATTERN_NEG.search(pattern) and bool(_INSIDE_NEG.search(matched))


def analyse_turn(text: str, rs: RuleSet) -> TurnFindings:
    cache = rs.turn_cache
    hit = cache.get(text)
    if hit is not None:
        cache.move_to_end(text)
        return hit
    res = _analyse(text, rs)
    cache[text] = res
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return res


def match_concepts(norm: str, concepts: dict[str, re.Pattern]) -> list[tuple[str, int, int, bool]]:
    """Every regex match of every concept in normalised text, with NegEx's verdict: (concept, start, end, negated).

    Shared by triage and the dialogue's history extraction (one NegEx component for both)."""
    from chatdoc.safety.nlp import SPAN_KEY, get_negex, get_nlp

    doc = get_nlp()(norm)
    spans, keys = [], []
    for cid, rx in concepts.items():
        for m in rx.finditer(norm):
            if m.end() <= m.start():
                continue
            span = doc.char_span(m.start(), m.end(), label=cid, alignment_mode="expand")
            if span is not None:
                spans.append(span)
                keys.append((cid, m.start(), m.end()))
    doc.spans[SPAN_KEY] = spans
    get_negex()(doc)
    return [(cid, s, e, bool(span._.negex)) for span, (cid, s, e) in zip(doc.spans[SPAN_KEY], keys)]


def _analyse(text: str, rs: RuleSet) -> TurnFindings:

    norm, pos = normalise(text, rs.spelling)
    found = TurnFindings()
    if not norm.strip():
        return found
    for cid, s, e, negex in match_concepts(norm, rs.compiled):
        os_, oe = _orig(pos, s, e)
        negated = negex or _negated_inside(norm[s:e], rs.compiled[cid].pattern)
        found.matches.append(Match(cid, os_, oe, text[os_:oe], negated))
    for f in find_ages(norm):
        os_, oe = _orig(pos, f.start, f.end)
        found.ages.append(Found(f.name, f.value, os_, oe))
    for f in find_vitals(norm):
        os_, oe = _orig(pos, f.start, f.end)
        found.vitals.append(Found(f.name, f.value, os_, oe))
    return found
