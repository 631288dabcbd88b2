"""Validate tests/evalsets/utterances.jsonl (format + basic consistency) and print counts.

Usage: python tests/evalsets/check_utterances.py [path]
"""

import json
import sys
from collections import Counter
from pathlib import Path

ASSERTIONS = {"present", "absent", "possible", "historical", "hypothetical", "family", "other_person", "asked_about"}
ATTRS = {"duration", "onset", "severity", "site", "laterality", "character", "radiation", "timing",
         "aggravating", "relieving", "value", "unit"}
ORIGINS = {"mts-dialog", "aci-bench"}


def check(path: Path) -> int:
    errors, ids = [], set()
    by_origin, by_assert, empty, n_find = Counter(), Counter(), 0, 0
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            o = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {ln}: bad JSON {e}")
            continue
        for key in ("id", "origin", "ref", "prior_question", "text", "findings"):
            if key not in o:
                errors.append(f"line {ln}: missing {key}")
        if o.get("id") in ids:
            errors.append(f"line {ln}: duplicate id {o.get('id')}")
        ids.add(o.get("id"))
        if o.get("origin") not in ORIGINS:
            errors.append(f"line {ln}: bad origin {o.get('origin')}")
        prefix = "mts-" if o.get("origin") == "mts-dialog" else "aci-"
        if not str(o.get("id", "")).startswith(prefix):
            errors.append(f"line {ln}: id/origin mismatch")
        by_origin[o.get("origin")] += 1
        if not o.get("findings"):
            empty += 1
        for f in o.get("findings", []):
            n_find += 1
            if f.get("span") not in o.get("text", ""):
                errors.append(f"line {ln}: span {f.get('span')!r} not in text")
            if f.get("assertion") not in ASSERTIONS:
                errors.append(f"line {ln}: bad assertion {f.get('assertion')}")
            if f.get("subject") not in ("patient", "speaker"):
                errors.append(f"line {ln}: bad subject {f.get('subject')}")
            hpo = f.get("hpo")
            if hpo is not None and not (isinstance(hpo, str) and hpo.startswith("HP:") and len(hpo) == 10):
                errors.append(f"line {ln}: bad hpo {hpo}")
            if "when" in f and f["assertion"] != "historical":
                errors.append(f"line {ln}: 'when' on non-historical finding")
            if f["assertion"] == "historical" and not f.get("when"):
                errors.append(f"line {ln}: historical finding without 'when'")
            extra = set(f.get("attributes", {})) - ATTRS
            if extra:
                errors.append(f"line {ln}: unknown attributes {extra}")
            v = f.get("attributes", {}).get("value")
            if v is not None and not isinstance(v, (int, float)):
                errors.append(f"line {ln}: non-numeric value {v!r}")
            by_assert[f.get("assertion")] += 1
    total = sum(by_origin.values())
    print(f"{path}: {total} utterances, {n_find} findings, {empty} with no findings ({empty / max(total, 1):.0%})")
    print("per origin:", dict(by_origin))
    print("per assertion:", dict(by_assert.most_common()))
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(check(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("utterances.jsonl")))
