"""The shipped MedQuAD knowledge base: reading it, and the record normalisation the build tool applies.

The copy under ``chatdoc/knowledge/data/medquad.jsonl.gz`` is built by ``python -m chatdoc.tools.build_knowledge``
from the shared MedQuAD file, so the app answers knowledge questions without ``../shared`` (see NOTICE.md there).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
KB_PATH = DATA_DIR / "medquad.jsonl.gz"
FIELDS = ("id", "source", "url", "focus", "qtype", "question", "answer")

_NAMELESS = re.compile(r"^\s*what is \(are\)\s*\??\s*$", re.I)  # "What is (are)  ?": the focus is missing
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


@dataclass(frozen=True)
class Record:
    """One MedQuAD question–answer pair as shipped."""

    id: str
    source: str
    url: str
    focus: str
    qtype: str
    question: str
    answer: str


def normalise_line(text: str) -> str:
    """Collapse runs of spaces/tabs to one space (one line)."""
    return _SPACES.sub(" ", text).strip()


def normalise_answer(text: str) -> str:
    """Whitespace-normalised answer: each line's spaces collapsed, blank lines dropped, lines joined by ``\\n``.

    Line breaks are kept (not collapsed to spaces) because they separate the sources' headers and list items
    ("Key Points", "- ...") from the sentences; the extractive answerer needs that boundary."""
    return "\n".join(line for line in (normalise_line(x) for x in text.splitlines()) if line)


def clean_record(raw: object) -> Record:
    """A shipped record from one raw MedQuAD object; ``ValueError`` when it is unusable (missing/empty field)."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    vals = {}
    for f in FIELDS:
        v = raw.get(f)
        if not isinstance(v, str):
            raise ValueError(f"field {f!r} missing or not a string")
        vals[f] = normalise_answer(v) if f == "answer" else normalise_line(v)
        if not vals[f] and f in ("id", "question", "answer"):
            raise ValueError(f"field {f!r} is empty")
    if _NAMELESS.match(vals["question"]):
        raise ValueError("question names nothing (template without a focus)")
    return Record(**vals)


def read_kb(path: Path | str = KB_PATH) -> list[Record]:
    """All shipped records (gzip JSON lines)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [Record(**{f: obj[f] for f in FIELDS}) for obj in map(json.loads, fh) if obj]


@lru_cache(maxsize=1)
def records() -> tuple[Record, ...]:
    """The shipped knowledge base, read once per process."""
    return tuple(read_kb())
