"""``chatdoc eval summary``: summary quality on ACI-BENCH / MTS-Dialog against the reference notes.

Every transcript is summarized with ``chatdoc.service.summarize_transcript`` -- the same code as
``chatdoc summarize --transcript`` -- and the summary text is scored with ROUGE-1/2/L (F1, Porter
stemming, ``rouge-score``) against:

* ACI-BENCH: the subjective part of the note -- the CHIEF COMPLAINT, HISTORY OF PRESENT ILLNESS and
  REVIEW OF SYSTEMS sections (``aci_subjective``). (The ACI-BENCH paper's "subjective" division also
  counts the history / medication sections; ``aci_subjective(note, ACI_SUBJECTIVE_FULL)`` gives that.)
* MTS-Dialog: ``section_text``.

Reference points (ACI-BENCH paper, subjective division, *test set 1*): fine-tuned BART ROUGE-1 52.4,
GPT-4 41.2, transcript-copy baseline "first 12 doctor turns" 23.7. We compute that baseline ourselves
on the split we evaluate (``first_doctor_turns``).
"""

from __future__ import annotations

import csv
import importlib
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ACI_SUBJECTIVE = ("CHIEF COMPLAINT", "HISTORY OF PRESENT ILLNESS", "REVIEW OF SYSTEMS")
ACI_SUBJECTIVE_FULL = ACI_SUBJECTIVE + (
    "MEDICAL HISTORY", "PAST HISTORY", "PAST MEDICAL HISTORY", "SURGICAL HISTORY", "SOCIAL HISTORY",
    "FAMILY HISTORY", "MEDICATIONS", "CURRENT MEDICATIONS", "ALLERGIES", "BIRTH HISTORY",
)
PAPER_ANCHORS = {"bart_finetuned_rouge1": 52.4, "gpt4_rouge1": 41.2, "first12_doctor_turns_rouge1": 23.7,
                 "note": "ACI-BENCH paper, subjective division, test set 1 (not the split evaluated here)"}

_HEADER = re.compile(r"^\s*([A-Z][A-Z0-9 /&,()'-]{1,60}?)\s*:?\s*$")
ALIASES = {"CC": "CHIEF COMPLAINT", "HPI": "HISTORY OF PRESENT ILLNESS", "ROS": "REVIEW OF SYSTEMS",
           "PMH": "PAST MEDICAL HISTORY", "PSH": "PAST SURGICAL HISTORY"}


class DataError(ValueError):
    pass


def note_sections(note: str) -> dict[str, str]:
    """Split a clinical note into {HEADER: body} on lines written entirely in capitals."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in note.splitlines():
        m = _HEADER.match(line)
        if m and any(c.isalpha() for c in m.group(1)) and m.group(1) == m.group(1).upper():
            current = re.sub(r"\s+", " ", m.group(1).strip())
            current = ALIASES.get(current, current)
            sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def aci_subjective(note: str, headers: tuple[str, ...] = ACI_SUBJECTIVE) -> str:
    """The subjective part of an ACI-BENCH note: the named sections, in note order, bodies only."""
    secs = note_sections(note)
    return "\n\n".join(body for h, body in secs.items() if h in headers and body)


def first_doctor_turns(dialogue: str, n: int = 12) -> str:
    """The transcript-copy baseline: the text of the first ``n`` doctor turns."""
    out = []
    for line in dialogue.splitlines():
        m = re.match(r"^\s*(?:\[doctor\]|doctor\s*:)\s*(.*)$", line, re.I)
        if m:
            out.append(m.group(1).strip())
            if len(out) >= n:
                break
    return "\n".join(out)


_scorer = None


def rouge(reference: str, prediction: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 (x100), Porter stemming."""
    global _scorer
    if _scorer is None:
        from rouge_score import rouge_scorer

        _scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    s = _scorer.score(reference, prediction)
    return {k: round(v.fmeasure * 100, 2) for k, v in s.items()}


def _read_csv(path: Path, need: tuple[str, ...]) -> list[dict]:
    if not path.exists():
        raise DataError(f"file not found: {path}")
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in need if rows and c not in rows[0]]
    if not rows or missing:
        raise DataError(f"{path}: expected columns {', '.join(need)}")
    return rows


def load_aci(path: str | Path) -> list[dict]:
    rows = _read_csv(Path(path), ("dialogue", "note"))
    return [{"id": r.get("encounter_id") or str(i), "dialogue": r["dialogue"], "reference": aci_subjective(r["note"]),
             "reference_full": aci_subjective(r["note"], ACI_SUBJECTIVE_FULL)} for i, r in enumerate(rows)]


def load_mts(path: str | Path) -> list[dict]:
    rows = _read_csv(Path(path), ("dialogue", "section_text"))
    return [{"id": r.get("ID") or str(i), "dialogue": r["dialogue"], "reference": r["section_text"],
             "section": r.get("section_header")} for i, r in enumerate(rows)]


def _mean(rows: list[dict], key: str) -> dict[str, float]:
    vals = [r[key] for r in rows if key in r]
    if not vals:
        return {}
    return {m: round(statistics.mean(v[m] for v in vals), 2) for m in ("rouge1", "rouge2", "rougeL")}


def evaluate(items: list[dict], dataset: str, limit: int | None = None, summarize: Callable[[str], object] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict:
    if summarize is None:
        summarize = importlib.import_module("chatdoc.service").build_service().summarize_transcript
    chosen = items[:limit] if limit else items
    rows = []
    for i, it in enumerate(chosen):
        row = {"id": it["id"], "baseline_first12": rouge(it["reference"], first_doctor_turns(it["dialogue"]))}
        if it.get("section"):
            row["section"] = it["section"]
        t0 = time.perf_counter()
        try:
            s = summarize(it["dialogue"])
            text = getattr(s, "text", s if isinstance(s, str) else "") or ""
            row["summary_s"] = round(time.perf_counter() - t0, 2)
            row["chatdoc"] = rouge(it["reference"], text)
            if it.get("reference_full"):
                row["chatdoc_vs_full_subjective"] = rouge(it["reference_full"], text)
            row["summary_chars"] = len(text)
        except Exception as e:  # keep going; report the error per item
            row["error"] = f"{type(e).__name__}: {e}"
        rows.append(row)
        if progress:
            progress(i + 1, len(chosen))
    out = {
        "dataset": dataset,
        "items": len(rows),
        "errors": sum(1 for r in rows if "error" in r),
        "chatdoc": _mean(rows, "chatdoc"),
        "baseline_first12_doctor_turns": _mean(rows, "baseline_first12"),
        "rows": rows,
    }
    if dataset == "aci-bench":
        out["reference"] = "CHIEF COMPLAINT + HISTORY OF PRESENT ILLNESS + REVIEW OF SYSTEMS"
        out["chatdoc_vs_full_subjective"] = _mean(rows, "chatdoc_vs_full_subjective")
        out["paper_anchors"] = PAPER_ANCHORS
    else:
        out["reference"] = "section_text"
    return out
