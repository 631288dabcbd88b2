"""``chatdoc eval conversation``: scripted consultations through the real service, scored turn by turn.

Sources
  * ``tests/evalsets/conversations.jsonl`` - own scripts with annotated patient questions (class, knowledge),
    corrections (field, from, to), distress and unclear answers; ``source`` "own" = dev, "own-test" = the frozen
    test split (written apart from the code, see tests/evalsets/CONVERSATIONS.md);
  * ``tests/evalsets/voiced.jsonl`` - AgentClinic cases voiced as patients (no annotations: acknowledgements,
    model acceptance and latency only).

The patient's messages are sent in order whatever the assistant replies. Scored (rubric in CONVERSATIONS.md):

* model parts accepted by the checks (acknowledgements, questions, grounded answers): accepted / attempted, with
  budget time-outs counted apart;
* acknowledgements naming a fact the patient did not say: every noun, proper noun, adjective, verb and number of
  an acknowledgement (spaCy lemmas, acknowledgement words aside) must be among the lemmas of the patient's turn.
  This is a second, independent check (the runtime check compares word stems);
* questions answered: an annotated question turn whose reply has an answer part (answered, grounded from a
  passage, or explicitly handed to the clinical team with the reason); class agreement with the annotation;
* groundedness: every sentence of a grounded answer supported by its cited passage (``chatdoc.knowledge``);
* answers below the triage level: an answer with wording that says less than the consultation's current level
  (e.g. "at home", "no need", "next few days" while the level is urgent); also counted against the case's
  expected level;
* corrections applied: the reply acknowledges it and the final staff summary shows the new value;
* unclear answers: the reply asks again (one clarifying question);
* per-turn latency p50/p95 (wall time of ``send_message``).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CONVERSATIONS = ROOT / "tests" / "evalsets" / "conversations.jsonl"
VOICED = ROOT / "tests" / "evalsets" / "voiced.jsonl"
LEVEL_RANK = {"self_care": 0, "routine": 1, "soon": 1, "urgent": 2, "emergency": 3, "unknown": 1}
_BELOW = {  # wording that says less than the level
    "emergency": r"\b(?:at home|self[- ]care|no need|don'?t worry|nothing to worry|next few days|book an appointment|"
                 r"routine|pharmacist can advise|needs? no|not an emergency|nothing .{0,30}emergency)\b",
    "urgent": r"\b(?:at home|self[- ]care|no need|don'?t worry|nothing to worry|next few days|book an appointment|"
              r"routine|wait and see)\b",
    "routine": r"\b(?:nothing to worry|don'?t worry|no need to (?:see|be seen|worry)|(?:can|will) (?:just )?wait it out)\b",
    "self_care": r"$^",
}
_ACK_OK = set("""thank thanks sorry hear sound that this it you your i we be have do get feel know see understand
understandable okay ok right alright noted note helpful good glad really very so quite such rough tough hard
difficult horrible awful frightening scary worrying worried worry concerning upsetting unpleasant uncomfortable
painful sore tell let lot much all about what there well just now still time deal correct change update notes
sure want clear useful appreciate mean""".split())
_NUM_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}


def load_conversations(split: str = "dev", path: Path = CONVERSATIONS) -> tuple[list[dict[str, Any]], list[str]]:
    """(cases, problems): one bad line is skipped and reported, never fatal."""
    want = {"dev": {"own"}, "test": {"own-test"}, "all": {"own", "own-test"}}[split]
    cases, problems = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            c = json.loads(line)
            if not isinstance(c.get("turns"), list) or not all(isinstance(t.get("text"), str) for t in c["turns"]):
                raise ValueError("turns must be a list of {text: ...}")
        except (ValueError, AttributeError) as e:
            problems.append(f"{path.name}:{i}: {e}")
            continue
        if c.get("source", "own") in want:
            cases.append(c)
    return cases, problems


def load_voiced(limit: int, path: Path = VOICED) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        c = json.loads(line)
        if not str(c.get("origin", "")).startswith("agentclinic"):
            continue
        out.append({"id": c["id"], "source": "agentclinic-voiced", "persona": "paediatric" if c.get("speaker") == "carer" else "gp",
                    "turns": [{"text": t} for t in c["turns"]]})
        if len(out) >= limit:
            break
    return out


def _lemmas(text: str) -> set[str]:
    from chatdoc.clinical.nlp import get_nlp

    return {(t.lemma_ or t.text).lower() for t in get_nlp()(text)} | {t.text.lower() for t in get_nlp()(text)}


def ack_unsaid(ack: str, patient: str) -> list[str]:
    """The content words of ``ack`` the patient did not say (spaCy lemmas; acknowledgement words aside)."""
    from chatdoc.clinical.nlp import get_nlp

    said = _lemmas(patient)
    said |= {_NUM_WORDS.get(w, w) for w in said}
    out = []
    for t in get_nlp()(ack):
        if t.pos_ not in ("NOUN", "PROPN", "ADJ", "VERB", "NUM") or t.is_stop:
            continue
        lem = (t.lemma_ or t.text).lower()
        if lem in _ACK_OK or t.text.lower() in _ACK_OK:
            continue
        if lem in said or t.text.lower() in said or _NUM_WORDS.get(lem, lem) in said:
            continue
        out.append(t.text)
    return out


def below_level(text: str, level: str) -> bool:
    return bool(re.search(_BELOW.get(level, "$^"), text, re.I))


def _norm(s: str) -> str:
    s = s.lower()
    for w, d in _NUM_WORDS.items():
        s = re.sub(rf"\b{w}\b", d, s)
    return re.sub(r"[^a-z0-9.]+", " ", s).strip()


def _grounded_ok(part: dict[str, Any]) -> bool | None:
    """Every sentence of a grounded answer's own text (before the source line) supported by its passage."""
    try:
        from chatdoc.knowledge import get_passage, supported
    except ImportError:
        return None
    p = get_passage(part.get("passage_id") or "")
    if p is None:
        return False
    body = part["text"].split("(Source:")[0]
    from chatdoc.clinical.text import sentences

    return all(supported(body[s:e].strip(), p.answer) for s, e in sentences(body) if body[s:e].strip())


def run_case(case: dict[str, Any], service) -> dict[str, Any]:
    persona = case.get("persona") or "gp"
    persona = "paediatric" if persona == "parent" else persona
    start = service.start_consultation(persona=persona)
    sid = start.session_id
    service.record_consent(sid)
    turns, times = [], []
    try:
        for t in case["turns"]:
            t0 = time.perf_counter()
            r = service.send_message(sid, t["text"])
            times.append(time.perf_counter() - t0)
            turns.append({"patient": t["text"], "reply": r.reply, "level": r.triage_level, "parts": r.parts,
                          "annotation": {k: v for k, v in t.items() if k != "text"}, "s": round(times[-1], 3)})
            if r.done:
                break
        summary = service.end_consultation(sid)
        summary_text = summary.text
    finally:
        try:
            service.delete_consultation(sid)
        except Exception:  # noqa: BLE001 - scoring goes on; the record expires anyway
            pass
    return {"case": case["id"], "source": case.get("source", "own"), "expected_level": case.get("expected_level"),
            "turns": turns, "summary": summary_text, "times": times}


def score(results: list[dict[str, Any]]) -> dict[str, Any]:
    from chatdoc.dialogue.respond import NOT_TRIED

    c: Counter = Counter()
    samples: list[dict[str, Any]] = []
    unsaid_examples: list[dict[str, Any]] = []
    below_examples: list[dict[str, Any]] = []
    times = [t for r in results for t in r["times"]]
    per_source: dict[str, Counter] = {}
    for r in results:
        src = per_source.setdefault(r["source"], Counter())
        for i, t in enumerate(r["turns"]):
            ann, parts = t["annotation"], t["parts"]
            for p in parts:
                k = p.get("kind")
                reasons = p.get("reasons") or []
                if k in ("ack", "question") or (k == "answer" and p.get("handling") == "grounded"):
                    tried = p.get("source") == "model" or any(x not in NOT_TRIED for x in reasons)
                    if p.get("source") == "model" or tried:
                        c[f"model_{k}_attempted"] += 1
                        c[f"model_{k}_accepted"] += p.get("source") == "model"
                    if "budget" in reasons:
                        c["model_budget_timeouts"] += 1
                if k == "ack":
                    c["acks"] += 1
                    bad = ack_unsaid(p["text"], t["patient"])
                    if bad:
                        c["acks_unsaid"] += 1
                        unsaid_examples.append({"case": r["case"], "patient": t["patient"], "ack": p["text"], "words": bad})
                if k == "answer":
                    c["answers"] += 1
                    c[f"answers_{p.get('handling')}"] += 1
                    if below_level(p["text"], t["level"]):
                        c["answers_below_level"] += 1
                        below_examples.append({"case": r["case"], "level": t["level"], "answer": p["text"]})
                    exp = r.get("expected_level")
                    if exp and below_level(p["text"], "emergency" if exp == "emergency" else exp):
                        c["answers_below_expected_level"] += 1
                    if p.get("handling") == "grounded":
                        ok = _grounded_ok(p)
                        c["grounded_checked"] += ok is not None
                        c["grounded_unsupported"] += ok is False
            q = ann.get("question")
            if q:
                c["questions"] += 1
                src["questions"] += 1
                ans = [p for p in parts if p.get("kind") == "answer"]
                if ans:
                    c["questions_answered"] += 1
                    src["questions_answered"] += 1
                    c["class_agree"] += any(p.get("qclass") == q["class"] for p in ans)
                elif t["level"] == "emergency" and "999" in t["reply"]:
                    c["questions_emergency_instruction_only"] += 1
                if len(samples) < 30 and (len(samples) < 5 or c["questions"] % 3 == 0):
                    samples.append({"case": r["case"], "class": q["class"], "level": t["level"], "patient": t["patient"],
                                    "reply": t["reply"]})
            elif any(p.get("kind") == "answer" for p in parts):
                c["answers_unannotated"] += 1
            if ann.get("correction"):
                c["corrections"] += 1
                acked = any(p.get("kind") == "ack" and "correct" in p["text"].lower() for p in parts)
                to = _norm(str(ann["correction"].get("to", "")))
                in_summary = bool(to) and to in _norm(r["summary"])
                c["corrections_acknowledged"] += acked
                c["corrections_in_summary"] += in_summary
                c["corrections_applied"] += acked and in_summary
            if ann.get("distress"):
                c["distress"] += 1
                c["distress_acknowledged"] += any(p.get("kind") in ("ack", "crisis", "emergency") for p in parts)
            if ann.get("ambiguous"):
                c["unclear"] += 1
                c["unclear_clarified"] += any(p.get("kind") == "ack" and "sure i have this right" in p["text"].lower()
                                              for p in parts)

    def rate(a: str, b: str) -> float | None:
        return round(c[a] / c[b], 3) if c[b] else None

    q = sorted(times)
    return {
        "cases": len(results), "turns": len(times), "counts": dict(c),
        "questions_answered_rate": rate("questions_answered", "questions"),
        "question_class_agreement": rate("class_agree", "questions_answered"),
        "model_ack_acceptance": rate("model_ack_accepted", "model_ack_attempted"),
        "model_question_acceptance": rate("model_question_accepted", "model_question_attempted"),
        "model_answer_acceptance": rate("model_answer_accepted", "model_answer_attempted"),
        "acks_with_unsaid_facts": c["acks_unsaid"], "answers_below_level": c["answers_below_level"],
        "grounded_unsupported": c["grounded_unsupported"],
        "corrections_applied_rate": rate("corrections_applied", "corrections"),
        "distress_acknowledged_rate": rate("distress_acknowledged", "distress"),
        "unclear_clarified_rate": rate("unclear_clarified", "unclear"),
        "turn_p50_s": round(statistics.median(q), 3) if q else None,
        "turn_p95_s": round(q[min(len(q) - 1, int(0.95 * len(q)))], 3) if q else None,
        "per_source": {s: {"questions": v["questions"], "answered": v["questions_answered"]} for s, v in per_source.items()},
        "samples": samples, "unsaid_examples": unsaid_examples[:20], "below_examples": below_examples[:20],
    }


def run(cases: list[dict[str, Any]], service, progress: Callable[[int, int, dict], None] | None = None
        ) -> dict[str, Any]:
    results = []
    for i, case in enumerate(cases, 1):
        try:
            r = run_case(case, service)
        except Exception as e:  # noqa: BLE001 - one bad case is reported, not fatal
            r = {"case": case.get("id"), "source": case.get("source"), "error": f"{type(e).__name__}: {e}"}
        results.append(r)
        if progress:
            progress(i, len(cases), r)
    ok = [r for r in results if "error" not in r]
    out = score(ok)
    out["errors"] = [{"case": r["case"], "error": r["error"]} for r in results if "error" in r]
    out["results"] = results
    return out


def report_md(res: dict[str, Any]) -> str:
    """A readable report: the numbers, then a sample of patient questions and the replies they got."""
    lines = ["# chatdoc eval conversation", "", f"{res['cases']} consultations, {res['turns']} patient turns "
             f"({res.get('date', '')}, {res.get('config', {})})", "", "| metric | value |", "|---|---|"]
    for k in ("questions_answered_rate", "question_class_agreement", "model_ack_acceptance", "model_question_acceptance",
              "model_answer_acceptance", "acks_with_unsaid_facts", "answers_below_level", "grounded_unsupported",
              "corrections_applied_rate", "distress_acknowledged_rate", "unclear_clarified_rate", "turn_p50_s", "turn_p95_s"):
        lines.append(f"| {k} | {res.get(k)} |")
    lines += ["", "Counts: " + ", ".join(f"{k} {v}" for k, v in sorted(res["counts"].items())), "",
              "## Sample of patient questions and replies", ""]
    for s in res["samples"]:
        lines += [f"**{s['case']}** ({s['class']}, level {s['level']})  ", f"> Patient: {s['patient']}  ",
                  f"> Assistant: {s['reply']}", ""]
    if res["unsaid_examples"]:
        lines += ["## Acknowledgements naming words the patient did not say", ""]
        lines += [f"- {e['case']}: “{e['ack']}” ({', '.join(e['words'])})" for e in res["unsaid_examples"]]
    if res["below_examples"]:
        lines += ["", "## Answers with wording below the triage level", ""]
        lines += [f"- {e['case']} ({e['level']}): {e['answer']}" for e in res["below_examples"]]
    return "\n".join(lines) + "\n"
