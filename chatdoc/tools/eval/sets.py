"""The clinical-understanding evaluation sets (``tests/evalsets/``) and their frozen dev/test split.

Sets (one JSONL each; see tests/evalsets/README.md for sources and licenses):

* ``own_scripts.jsonl``  multi-turn scripts per failure class, written apart from the rules (origin ``own``)
* ``vignettes.jsonl``    the 400 Avey vignettes as one first-person text (origin ``avey``)
* ``agentclinic.jsonl``  the 107 AgentClinic cases as one text (origin ``agentclinic``)
* ``voiced.jsonl``       Avey / AgentClinic cases re-told as a patient would type them, several turns
                         (origins ``avey-voiced``, ``agentclinic-voiced``; level joined from the case)
* ``utterances.jsonl``   real patient utterances from MTS-Dialog and ACI-BENCH with annotated findings

The split is fixed by the case's id (a voiced script goes with its case): SHA-256 of the id, even first byte
= ``dev``, odd = ``test``. It was frozen before the engine work; tune only on ``dev`` and report both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from chatdoc.jsonl import read_jsonl

SETS_DIR = Path(__file__).resolve().parents[3] / "tests" / "evalsets"
TRIAGE_FILES = ("own_scripts.jsonl", "vignettes.jsonl", "agentclinic.jsonl", "voiced.jsonl")
FINDINGS_FILES = ("utterances.jsonl", "own_scripts.jsonl")
Split = Literal["dev", "test", "all"]


class SetError(ValueError):
    """An evaluation file is missing or unreadable."""


def split_of(case: dict[str, Any]) -> str:
    key = str(case.get("case") or case["id"])
    return "dev" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "test"


def load(name: str, split: Split = "dev", directory: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(cases of ``split``, problems): a bad line is skipped and reported, never fatal."""
    path = (directory or SETS_DIR) / name
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for where, obj in read_jsonl(path, SetError, "evaluation set not found", problems):
        if not isinstance(obj, dict) or "id" not in obj:
            problems.append(f"{where}: not a case object with an id")
            continue
        if split == "all" or split_of(obj) == split:
            out.append(obj)
    return out, problems


def triage_cases(split: Split = "dev", directory: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every triage case of ``split`` with ``turns``, ``expected`` and ``origin``; voiced scripts take the level
    of the case they retell."""
    cases: list[dict[str, Any]] = []
    problems: list[str] = []
    levels: dict[str, dict[str, Any]] = {}
    for name in TRIAGE_FILES:
        try:
            rows, bad = load(name, "all", directory)
        except SetError as e:
            problems.append(str(e))
            continue
        problems += bad
        for r in rows:
            if "expected" in r:
                levels[r["id"]] = r
            if "turns" not in r and isinstance(r.get("text"), str):
                r = {**r, "turns": [r["text"]]}
            if r.get("case") and "expected" not in r:
                src = levels.get(r["case"])
                if src is None:
                    problems.append(f"{name}: {r['id']}: no level for case {r['case']}")
                    continue
                r = {**r, "expected": src["expected"], "profile": r.get("profile") or src.get("profile")}
            if not r.get("turns") or r.get("expected") is None:
                problems.append(f"{name}: {r['id']}: needs turns/text and expected")
                continue
            if split == "all" or split_of(r) == split:
                cases.append(r)
    return cases, problems
