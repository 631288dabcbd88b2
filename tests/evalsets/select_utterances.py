"""Seeded selection of patient utterances for the annotated evaluation set.

Sources (CC BY 4.0):
  * MTS-Dialog  -- Ben Abacha et al., "An Empirical Study of Clinical Note Generation
    from Doctor-Patient Encounters", EACL 2023.
  * ACI-BENCH   -- Yim et al., "ACI-BENCH: a Novel Ambient Clinical Intelligence Dataset
    for Benchmarking Automatic Visit Note Generation", Scientific Data 2023.

Usage:  python tests/evalsets/select_utterances.py [DATA_DIR] > candidates.jsonl
Prints one JSON object per selected candidate (id, origin, ref, prior_question, text, tags).
Annotation (findings) was done by hand on this output; obviously-doctor utterances
(ASR speaker swaps in ACI-BENCH) were dropped during annotation.
"""

import csv
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

SEED = 15
N_MTS = 175  # over-sample a little; some candidates are dropped during annotation
N_ACI = 160
MAX_PER_DIALOGUE = 3
MIN_WORDS = 4
MAX_WORDS = 90  # keep single utterances annotatable

CLINICAL = re.compile(
    r"\b(pain|ache|aches|hurt|hurts|hurting|sore|swell|swollen|swelling|fever|cough|nause|vomit|"
    r"dizz|headache|migraine|rash|itch|bleed|blood|numb|tingl|weak|tired|fatigue|short of breath|"
    r"breath|chest|stomach|diarr|constipat|burn|cramp|stiff|fall|fell|injur|broke|fracture|"
    r"diabet|sugar|pressure|hypertension|asthma|cancer|tumor|stroke|heart|attack|seizure|"
    r"depress|anxi|sleep|insomnia|allerg|surgery|operation|pill|medic|mg|milligram|dose|"
    r"tylenol|ibuprofen|advil|aspirin|insulin|metformin|lisinopril|inhaler|antibiotic|"
    r"smok|cigarette|alcohol|drink|beer|wine|drug|marijuana|pregnan|period|weight|appetite|"
    r"vision|hearing|urin|pee|knee|back|shoulder|hip|ankle|wrist|neck|arthritis|infection|"
    r"cold|flu|covid|thyroid|cholesterol|kidney|liver|lung|copd|sick|disease|diagnos)",
    re.I,
)
TAGS = {
    "negation": re.compile(r"\b(no|not|never|don't|didn't|haven't|hasn't|nothing|none|denies|without)\b|n't\b", re.I),
    "past": re.compile(r"\b(years? ago|months? ago|when i was|used to|had (a|an|my)|back in|in (19|20)\d\d|history|previous|before)\b", re.I),
    "family": re.compile(r"\b(mother|mom|father|dad|sister|brother|aunt|uncle|grand\w*|son|daughter|family|parents?|cousin)\b", re.I),
    "other": re.compile(r"\b(friend|coworker|co-worker|neighbor|roommate|husband|wife|boyfriend|girlfriend|partner)\b", re.I),
    "question": re.compile(r"\?"),
    "hedge": re.compile(r"\b(maybe|might|think|probably|possibly|not sure|guess|kind of|kinda|sort of|could be)\b", re.I),
    "number": re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twenty|hundred|days?|weeks?|months?|years?|hours?)\b", re.I),
}
# Quota of candidates drawn per tag before filling at random (per origin, as fractions).
QUOTA = {"negation": 0.15, "past": 0.12, "family": 0.08, "other": 0.05, "question": 0.06, "hedge": 0.08, "number": 0.12}

# Second stage: a few extra candidates for the rarer assertion types (hypothetical, other person, hedge).
SUPPLEMENT = {
    "hypothetical": re.compile(r"\b(what if|in case|should i|can i|if (it|i|the|my|this)\b[^.?]*\b(worse|gets?|happens?|comes?|stops?))", re.I),
    "other": re.compile(r"\bmy (friend|coworker|co-worker|neighbor|roommate|husband|wife|boyfriend|girlfriend|partner|boss)\b[^.?]*\b(has|had|got|is|was|gets)\b", re.I),
    "hedge": re.compile(r"\b(maybe|might have|i think i|not sure|possibly|probably|could be)\b", re.I),
}
N_SUPPLEMENT = 4  # per tag and origin

DOCTOR_LIKE = re.compile(r"\b(i'm going to (order|prescribe|refer)|let's go ahead|your exam|on exam|my impression|i recommend)\b", re.I)


def mts_turns(data_dir: Path):
    for fname, split in (("MTS-Dialog-TrainingSet.csv", ""), ("MTS-Dialog-ValidationSet.csv", "val")):
        with open(data_dir / "mts-dialog" / fname, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                turns = []
                for line in str(row["dialogue"]).split("\n"):
                    m = re.match(r"^\s*([A-Za-z_]+)\s*:\s*(.*)$", line)
                    if m:
                        turns.append([m.group(1).lower(), m.group(2).strip()])
                    elif turns and line.strip():
                        turns[-1][1] += " " + line.strip()
                dlg = f"mts-{split}{row['ID']}"
                ref = f"{fname} ID={row['ID']}"
                yield dlg, ref, turns


def aci_turns(data_dir: Path):
    for split in ("train", "valid"):
        with open(data_dir / "aci-bench" / f"{split}.csv", newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                turns = []
                for line in str(row["dialogue"]).split("\n"):
                    m = re.match(r"^\s*\[([a-z_]+)\]\s*(.*)$", line)
                    if m:
                        turns.append([m.group(1), m.group(2).strip()])
                    elif turns and line.strip():
                        turns[-1][1] += " " + line.strip()
                yield f"aci-{split}-{i}", f"aci-bench/{split}.csv row={i} encounter_id={row['encounter_id']}", turns


def candidates(dialogues, origin, patient_roles, doctor_roles):
    out = []
    for dlg, ref, turns in dialogues:
        for k, (role, text) in enumerate(turns):
            if role not in patient_roles:
                continue
            nw = len(text.split())
            if nw < MIN_WORDS or nw > MAX_WORDS or not CLINICAL.search(text) or DOCTOR_LIKE.search(text):
                continue
            prior = None
            if k > 0 and turns[k - 1][0] in doctor_roles:
                prior = turns[k - 1][1]
            tags = sorted(t for t, rx in TAGS.items() if rx.search(text))
            out.append({"id": f"{dlg}-{k}", "dialogue": dlg, "origin": origin, "ref": f"{ref} turn={k}",
                        "prior_question": prior, "text": text, "tags": tags})
    return out


def pick(cands, n, rng):
    rng.shuffle(cands)
    per_dlg = defaultdict(int)
    chosen, seen = [], set()
    state = (per_dlg, seen)

    def take(c):
        if c["id"] in seen or per_dlg[c["dialogue"]] >= MAX_PER_DIALOGUE:
            return False
        seen.add(c["id"]); per_dlg[c["dialogue"]] += 1; chosen.append(c)
        return True

    for tag, frac in QUOTA.items():
        want = round(frac * n)
        for c in cands:
            if want <= 0:
                break
            if tag in c["tags"] and take(c):
                want -= 1
    for c in cands:
        if len(chosen) >= n:
            break
        take(c)
    return chosen, state


def supplement(cands, state, rng):
    per_dlg, seen = state
    pool = [c for c in cands if c["id"] not in seen]
    rng.shuffle(pool)
    extra = []
    for tag, rx in SUPPLEMENT.items():
        want = N_SUPPLEMENT
        for c in pool:
            if want <= 0:
                break
            if c["id"] in seen or per_dlg[c["dialogue"]] >= MAX_PER_DIALOGUE or not rx.search(c["text"]):
                continue
            seen.add(c["id"]); per_dlg[c["dialogue"]] += 1; extra.append(c); want -= 1
    return extra


def main():
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data"
    rng = random.Random(SEED)
    mts_c = candidates(mts_turns(data_dir), "mts-dialog", {"patient"}, {"doctor", "guest_clinician"})
    aci_c = candidates(aci_turns(data_dir), "aci-bench", {"patient", "patient_guest"}, {"doctor"})
    mts, mts_state = pick(mts_c, N_MTS, rng)
    aci, aci_state = pick(aci_c, N_ACI, rng)
    mts_extra = supplement(mts_c, mts_state, rng)
    aci_extra = supplement(aci_c, aci_state, rng)
    for c in mts + aci + mts_extra + aci_extra:
        c.pop("dialogue")
        print(json.dumps(c, ensure_ascii=False))


if __name__ == "__main__":
    main()
