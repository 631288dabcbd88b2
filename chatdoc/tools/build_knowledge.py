"""Build the shipped knowledge base ``chatdoc/knowledge/data/medquad.jsonl.gz`` (+ NOTICE.md) from MedQuAD.

    python -m chatdoc.tools.build_knowledge [--src PATH] [--out DIR]

The source is the shared MedQuAD JSON-lines file (default ``<train.data_dir>/medquad/medquad.jsonl``). Kept
fields: id, source, url, focus, qtype, question, answer; whitespace normalised (chatdoc.knowledge.corpus).
A bad record (not JSON, missing/empty field) is skipped and counted, never fatal; exact duplicates (same
question and answer after normalisation) are dropped; repeated ids (MedQuAD reuses ids across documents)
get a ``#n`` suffix so every shipped id is unique. The gzip is written with mtime 0 so rebuilds are byte-stable.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chatdoc.knowledge.corpus import DATA_DIR, clean_record

NOTICE = """# MedQuAD (shipped copy)

`medquad.jsonl.gz` is derived from **MedQuAD** (Medical Question Answering Dataset): 47,457 question–answer pairs
from 12 NIH websites, of which this copy holds the {kept:,} pairs whose answers are distributed.

- Source: https://github.com/abachaa/MedQuAD (as supplied in the shared data set `medquad/medquad.jsonl`)
- License: Creative Commons Attribution 4.0 International (CC BY 4.0), https://creativecommons.org/licenses/by/4.0/
- Citation: Asma Ben Abacha and Dina Demner-Fushman. "A Question-Entailment Approach to Question Answering".
  BMC Bioinformatics 20, 511 (2019). https://doi.org/10.1186/s12859-019-3119-4

## What was changed

- Kept fields: id, source, url, focus, qtype, question, answer (the `cui` field was dropped).
- Whitespace normalised: runs of spaces collapsed, blank lines removed, line breaks kept (answers);
  questions and other fields collapsed to one line. No wording was changed.
- Dropped: {bad} unusable record(s) (not JSON, or a missing/empty field) and {dups} exact duplicate(s)
  (same question and answer after normalisation).
- Ids: MedQuAD reuses ids across documents; {renamed} repeated id(s) got a `#n` suffix so each id is unique.

Built by `python -m chatdoc.tools.build_knowledge` from {read:,} source records.
"""


@dataclass
class BuildReport:
    read: int = 0
    kept: int = 0
    bad: int = 0
    dups: int = 0
    renamed: int = 0
    problems: list[str] = field(default_factory=list)


def build(src: Path, out_dir: Path = DATA_DIR) -> BuildReport:
    """Write ``medquad.jsonl.gz`` and ``NOTICE.md`` into ``out_dir``; return the counts."""
    rep = BuildReport()
    seen: set[tuple[str, str]] = set()
    ids: Counter[str] = Counter()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz, \
            open(src, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rep.read += 1
            try:
                rec = clean_record(json.loads(line))
            except (json.JSONDecodeError, ValueError) as e:
                rep.bad += 1
                rep.problems.append(f"{src}:{no}: {e}, skipped")
                continue
            key = (rec.question.lower(), rec.answer)
            if key in seen:
                rep.dups += 1
                continue
            seen.add(key)
            ids[rec.id] += 1
            row = asdict(rec)
            if ids[rec.id] > 1:
                row["id"] = f"{rec.id}#{ids[rec.id]}"
                rep.renamed += 1
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            rep.kept += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "medquad.jsonl.gz").write_bytes(buf.getvalue())
    (out_dir / "NOTICE.md").write_text(NOTICE.format(**asdict(rep)), encoding="utf-8")
    return rep


def _default_src() -> Path:
    from chatdoc.config import load_settings

    s = load_settings()
    return s.path(s.train.data_dir) / "medquad" / "medquad.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=None, help="MedQuAD JSON lines (default: shared data)")
    ap.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default: the package data)")
    args = ap.parse_args(argv)
    src = args.src or _default_src()
    if not src.is_file():
        print(f"MedQuAD not found: {src}")
        return 2
    rep = build(src, args.out)
    for p in rep.problems[:20]:
        print(p)
    size = (args.out / "medquad.jsonl.gz").stat().st_size
    print(f"read {rep.read}, kept {rep.kept}, bad {rep.bad}, duplicates {rep.dups}, ids renamed {rep.renamed}; "
          f"{args.out / 'medquad.jsonl.gz'} {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
