"""Text normalisation for concept matching, with a map back to the original offsets.

Every pattern in the rule file and the lexicon is written for this form: lower case, straight quotes, NO
apostrophes ("can't" -> "cant"), one space between words, the rule file's spelling table applied word by word.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\s+|.", re.S)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


def normalise(text: str, spelling: dict[str, str]) -> tuple[str, list[int]]:
    """(normalised text, for each of its characters the offset in ``text``)."""
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
        for i, ch in enumerate(piece):
            out.append(ch)
            pos.append(m.start() + min(i, width - 1))
    return "".join(out), pos


def original_span(pos: list[int], start: int, end: int) -> tuple[int, int]:
    """The span in the original text of ``[start, end)`` in the normalised text."""
    if not pos:
        return 0, 0
    return pos[min(start, len(pos) - 1)], pos[max(min(end, len(pos)) - 1, 0)] + 1


_CLAUSE = re.compile(r"[^.!?;\n]+[.!?;\n]*")
_CLAUSE_SPLIT = re.compile(r",\s*(?:and|but|so|then)?\s*|\s+(?:but|and then|and now|whereas|although|though)\s+", re.I)


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (split at . ! ? ; and new lines)."""
    return [(m.start(), m.end()) for m in _CLAUSE.finditer(text) if m.group().strip()]


def clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans: sentences further split at commas and contrastive conjunctions (for semantic matching)."""
    out: list[tuple[int, int]] = []
    for s, e in sentences(text):
        pos = s
        for m in _CLAUSE_SPLIT.finditer(text, s, e):
            if text[pos:m.start()].strip():
                out.append(_trim(text, pos, m.start()))
            pos = m.end()
        if text[pos:e].strip():
            out.append(_trim(text, pos, e))
    return out


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and not text[s].isalnum():
        s += 1
    while e > s and not text[e - 1].isalnum():
        e -= 1
    return s, e
