"""The clinical allow-list: terms and regexes that are never redacted (``configs/privacy_allow_list.yaml``).

Eponymous conditions ("Crohn's", "Bell's palsy") and drug names are tagged as people by NER; durations
and doses look like dates or numbers. The redactor drops a PERSON entity that overlaps an allow match,
and any other entity that lies wholly inside one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml


class AllowListError(ValueError):
    """The allow-list file is missing or malformed (message names the file and the entry)."""


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def term_regex(term: str) -> str:
    """Regex for one term: case-insensitive, optional possessive, hyphen == space, accents optional."""
    out = []
    for ch in term.strip():
        base = _strip_accents(ch)
        if ch in "'’":
            out.append("['’]?")
        elif ch in "- ":
            out.append(r"[\s\-]?")
        elif base != ch:
            out.append(f"[{re.escape(ch)}{re.escape(base)}]")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    body = body.replace("['’]?s", "(?:['’]?s)?") if body.endswith("['’]?s") else body
    return rf"(?<!\w){body}(?:['’]?s|['’])?(?!\w)"


@dataclass(frozen=True)
class AllowList:
    terms: tuple[str, ...]
    patterns: tuple[tuple[str, str], ...]  # (name, regex)

    def __post_init__(self):
        rx = [term_regex(t) for t in self.terms] + [p for _, p in self.patterns]
        object.__setattr__(self, "_rx", re.compile("|".join(f"(?:{r})" for r in rx), re.IGNORECASE) if rx else None)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of allow-listed text (may overlap)."""
        if self._rx is None:
            return []
        spans = []
        for pattern_rx in (self._rx,):
            pos = 0
            while True:
                m = pattern_rx.search(text, pos)
                if not m:
                    break
                if m.end() > m.start():
                    spans.append(m.span())
                pos = max(m.end(), m.start() + 1)
        return spans

    def is_allowed(self, text: str) -> bool:
        """True when the whole string is one allow-listed phrase."""
        return any(s == 0 and e == len(text) for s, e in self.spans(text))


def load_allow_list(path: Path) -> AllowList:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise AllowListError(f"allow-list file not found: {path}") from None
    except yaml.YAMLError as e:
        raise AllowListError(f"allow-list {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise AllowListError(f"allow-list {path} must be a mapping with 'terms' and 'patterns'")
    terms = data.get("terms") or []
    pats = data.get("patterns") or []
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise AllowListError(f"allow-list {path}: 'terms' must be a list of non-empty strings")
    patterns = []
    for i, p in enumerate(pats):
        if not isinstance(p, dict) or not isinstance(p.get("regex"), str):
            raise AllowListError(f"allow-list {path}: patterns[{i}] needs a 'regex' string")
        try:
            re.compile(p["regex"], re.IGNORECASE)
        except re.error as e:
            raise AllowListError(f"allow-list {path}: patterns[{i}] ({p.get('name', '?')}) is not a valid regex: {e}") from None
        patterns.append((str(p.get("name", f"pattern{i}")), p["regex"]))
    return AllowList(tuple(terms), tuple(patterns))
