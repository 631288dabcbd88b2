"""Redaction: Presidio analysis -> allow-list -> overlap resolution -> typed placeholders.

Pipeline per message: spaCy (PERSON only) + pattern/cue recognizers (see ``recognizers``) ->
drop anything inside an existing placeholder (re-redaction is idempotent) -> drop allow-listed clinical
text -> keep the best of overlapping spans (structured identifiers beat NER names; then score; then
length) -> presidio-anonymizer replaces each span with the session placeholder.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from pydantic import BaseModel

from chatdoc.privacy.allowlist import AllowList, load_allow_list
from chatdoc.privacy.placeholders import PLACEHOLDER_RX, PlaceholderState
from chatdoc.privacy.recognizers import TYPE_MAP, implausible_name


class Entity(BaseModel):
    type: str
    start: int  # offsets in the ORIGINAL text
    end: int
    score: float
    placeholder: str = ""


class Redaction(BaseModel):
    text: str
    entities: list[Entity]
    state: PlaceholderState


class Redactor:
    """Built once per process by :func:`get_redactor` (loading spaCy takes ~1-2 s)."""

    def __init__(self, analyzer, allow: AllowList, score_threshold: float = 0.4):
        from presidio_anonymizer import AnonymizerEngine

        self.analyzer = analyzer
        self.allow = allow
        self.score_threshold = score_threshold
        self._anonymizer = AnonymizerEngine()
        self._lock = threading.Lock()  # spaCy pipelines are not guaranteed thread-safe

    # ------------------------------------------------------------------ analysis
    def analyze(self, text: str) -> list[Entity]:
        """Identifier spans in ``text`` (no placeholders assigned), sorted by start, non-overlapping."""
        if not text or not text.strip():
            return []
        with self._lock:
            raw = self.analyzer.analyze(text=text, language="en", score_threshold=self.score_threshold)
        cands = []
        for r in raw:
            t = TYPE_MAP.get(r.entity_type)
            if t is None or r.score < self.score_threshold:
                continue
            s, e = _trim(text, r.start, r.end)
            if e > s:
                cands.append(Entity(type=t, start=s, end=e, score=round(float(r.score), 3)))
        if not cands:
            return []
        protected = [m.span() for m in PLACEHOLDER_RX.finditer(text)]
        allowed = self.allow.spans(text)
        kept = []
        for c in cands:
            if any(_overlaps(c.start, c.end, s, e) for s, e in protected):
                continue
            if c.type == "PERSON" and implausible_name(text[c.start:c.end]):
                continue
            if c.type == "PERSON" and any(_overlaps(c.start, c.end, s, e) for s, e in allowed):
                continue
            if any(s <= c.start and c.end <= e for s, e in allowed):
                continue
            kept.append(c)
        return _resolve(kept)

    # ------------------------------------------------------------------ redaction
    def redact(self, text: str, state: PlaceholderState | None = None) -> Redaction:
        """Replace identifiers with session placeholders. ``state`` is not mutated; the new one is returned."""
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        state = PlaceholderState.new() if state is None else state.model_copy(deep=True)
        ents = self.analyze(text)
        if not ents:
            return Redaction(text=text, entities=[], state=state)
        assigned: dict[tuple[str, str], str] = {}
        for ent in ents:  # in reading order, so numbering follows the text
            ent.placeholder = state.placeholder_for(ent.type, text[ent.start:ent.end])
            assigned[(ent.type, text[ent.start:ent.end])] = ent.placeholder
        operators = {
            t: OperatorConfig("custom", {"lambda": (lambda v, _t=t: assigned[(_t, v)])})
            for t in {e.type for e in ents}
        }
        out = self._anonymizer.anonymize(
            text=text,
            analyzer_results=[RecognizerResult(e.type, e.start, e.end, e.score) for e in ents],
            operators=operators,
        )
        return Redaction(text=out.text, entities=ents, state=state)


# ---------------------------------------------------------------------------- helpers
# On overlap: cue-specific identifiers beat generic shapes (a phone-like number after "SSN" is an SSN),
# which beat NER/name guesses.
_PRIORITY = {"PERSON": 0, "PHONE": 1, "URL": 1, "POSTCODE": 1, "ADDRESS": 1}


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and (text[s] in " \t\n,;:.\"')" or (text[s] == "(" and ")" not in text[s:e])):
        s += 1
    while e > s and (text[e - 1] in " \t\n,;:\"'(" or (text[e - 1] == ")" and "(" not in text[s:e])):
        e -= 1
    if e > s and text[e - 1] == "." and not re.search(r"\.\w", text[s:e]):
        e -= 1  # sentence full stop after a name/number, but keep dots inside "dr.x.com"
    return s, e


def _resolve(ents: list[Entity]) -> list[Entity]:
    order = sorted(ents, key=lambda x: (_priority(x.type), x.score, x.end - x.start), reverse=True)
    chosen: list[Entity] = []
    for c in order:
        if not any(_overlaps(c.start, c.end, k.start, k.end) for k in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda x: x.start)


def _priority(t: str) -> int:
    return _PRIORITY.get(t, 2)


@lru_cache(maxsize=1)
def get_redactor() -> Redactor:
    """The process-wide redactor (analyzer, spaCy pipeline and allow-list built once)."""
    from chatdoc.config import get_settings
    from chatdoc.privacy.engine import build_analyzer

    s = get_settings()
    cfg = s.privacy
    return Redactor(build_analyzer(cfg), load_allow_list(s.path(cfg.allow_list_file)), cfg.score_threshold)


def redact_text(text: str) -> str:
    """Redacted text with a throw-away session (placeholders numbered from 1)."""
    return get_redactor().redact(text).text


def contains_identifier(text: str) -> bool:
    return bool(get_redactor().analyze(text))
