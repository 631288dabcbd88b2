"""Multi-task job examples (chatdoc.train.tasks) and the JSONL ``"target": "last"`` / ``"split"`` options."""

import json
import re
from collections import Counter, defaultdict

import pytest
from typer.testing import CliRunner

from chatdoc.llm.jobs import ack_system, answer_system, question_system
from chatdoc.llm.prompt import Turn, training_pair
from chatdoc.train.data import DataError, conversation_samples, default_system, load_jsonl
from chatdoc.train.tasks import (
    ACK_MAX_WORDS,
    ANSWER_MAX_WORDS,
    REFUSALS,
    build_tasks,
    foreign_words,
    reflect,
    write_tasks,
)
from tests.shared_data import SHARED_DATA, needs_shared_data


def _words(text):
    return len(text.split())


def _count(text):
    return len(text.split())


# ---------------------------------------------------------------------------------------------- JSONL options


def test_target_last_gives_one_sample_per_conversation(tmp_path):
    convs = [
        {"id": "a", "target": "last", "split": "validation", "turns": [
            {"role": "patient", "text": "My knee hurts."}, {"role": "doctor", "text": "Since when?"},
            {"role": "patient", "text": "Since Saturday."}, {"role": "doctor", "text": "Thank you, that's helpful."}]},
        {"id": "b", "target": "last", "turns": [
            {"role": "doctor", "text": "Hello."}, {"role": "patient", "text": "Hi."},
            {"role": "doctor", "text": "What brings you in?"}]},
        {"id": "c", "turns": [  # default: every doctor turn
            {"role": "doctor", "text": "Hello."}, {"role": "patient", "text": "Hi."},
            {"role": "doctor", "text": "What brings you in?"}]},
        {"id": "d", "target": "last", "turns": [  # last turn is the patient's: nothing to train on
            {"role": "doctor", "text": "Hello."}, {"role": "patient", "text": "Hi."}]},
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(c) for c in convs) + "\n")
    loaded = {c.id.rsplit("-", 1)[1]: c for c in load_jsonl(f)}
    assert loaded["a"].split == "validation" and loaded["b"].split is None
    n = {k: conversation_samples(c, "sys", _count, 4096, "train") for k, c in loaded.items()}
    assert [len(n[k]) for k in "abcd"] == [1, 1, 2, 0]
    s = n["a"][0]
    assert s.turn_index == 3 and s.completion == " Thank you, that's helpful.\n"
    assert s.prompt == training_pair("sys", [Turn("patient", "My knee hurts."), Turn("doctor", "Since when?"),
                                             Turn("patient", "Since Saturday.")], "x")[0]


@pytest.mark.parametrize("extra,msg", [({"target": "first"}, "'target'"), ({"split": "eval"}, "'split'")])
def test_jsonl_target_and_split_are_checked(tmp_path, extra, msg):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"turns": [{"role": "doctor", "text": "Hi."}], **extra}) + "\n")
    with pytest.raises(DataError, match=msg):
        load_jsonl(f)


# ---------------------------------------------------------------------------------------------- unit rules


def test_reflective_acks_use_only_the_patients_words():
    cases = ["my knee has been really swollen since saturday", "no", "about two weeks",
             "I'm really scared it's something serious", "I have had a cough for three days and it's getting worse",
             "The pain is in my lower back and it hurts when I bend"]
    for i, p in enumerate(cases):
        a = reflect(p, f"k{i}")
        if a is None:  # nothing fits: the turn gets no reflective example
            assert i >= 4, p
            continue
        assert "?" not in a and _words(a) <= ACK_MAX_WORDS
        assert not foreign_words(a, p), (p, a)
    assert reflect("I'm really scared it's something serious", "x") in {
        "That sounds really worrying.", "I can understand why that's worrying.", "That must be difficult.",
        "I'm sorry, that sounds really hard.", "That sounds frightening, I'm sorry.",
        "I understand, that's a lot to deal with."}
    assert foreign_words("You probably have arthritis.", "my knee hurts") == {"probably", "arthritis"}


def test_refusals_have_no_digits():
    assert len(set(REFUSALS)) >= 5
    assert not any(re.search(r"\d", r) for r in REFUSALS)
    assert all(re.search(r"pharmacist|GP", r) for r in REFUSALS)


def test_one_bad_medquad_record_is_skipped_and_counted(tmp_path):
    d = tmp_path / "data"
    (d / "medquad").mkdir(parents=True)
    good = {"id": "0001_1-1", "source": "MPlusHealthTopics", "question": "What is (are) Gout ?",
            "answer": "Gout is a common, painful form of arthritis. It causes swollen, red, hot and stiff joints."}
    (d / "medquad" / "medquad.jsonl").write_text("{not json\n" + json.dumps({"id": 3}) + "\n" + json.dumps(good) + "\n")
    examples, report = build_tasks(d, limit_per_task=5)
    assert report["candidates"]["answer/medquad/bad_record"] == 2
    assert report["candidates"]["answer/medquad/extractive"] == 1
    assert "missing/mts" in report["skipped"]
    ans = [e for e in examples if e.task == "answer" and e.source == "medquad"]
    assert len(ans) == 1 and ans[0].target in ans[0].meta["passage"]


# ---------------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def built():
    if not (SHARED_DATA / "mts-dialog").is_dir() or not (SHARED_DATA / "medquad" / "medquad.jsonl").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return build_tasks(SHARED_DATA, limit_per_task=300)


@needs_shared_data
def test_counts_per_task_and_source(built):
    examples, report = built
    tasks = report["tasks"]
    assert set(tasks) == {"ack", "question", "answer", "consult"}
    assert {"mts", "aci"} <= set(tasks["ack"]["sources"])
    assert {"mts", "bank"} <= set(tasks["question"]["sources"])
    assert {"medquad", "refusal"} <= set(tasks["answer"]["sources"])
    assert all(v["splits"].get("train", 0) > 0 for v in tasks.values())
    assert sum(v["splits"].get("validation", 0) for v in tasks.values()) > 0
    assert all(v["personas"].get("paediatric", 0) > 0 for k, v in tasks.items() if k != "consult")
    assert len({e.id for e in examples}) == len(examples)


@needs_shared_data
def test_prompts_are_byte_identical_to_the_runtime_jobs(built, tmp_path):
    examples, _ = built
    from chatdoc.config import get_settings

    s = get_settings()
    pdir = s.path(s.dialogue.personas_dir)
    persona = {k: default_system(pdir, k) for k in ("gp", "paediatric")}
    who = {"gp": "the patient about their", "paediatric": "the parent about their child's"}
    f = tmp_path / "tasks.jsonl"
    assert write_tasks(examples, f) == len(examples)
    convs = {c.id.split("-", 2)[2]: c for c in load_jsonl(f)}
    seen = Counter()
    for e in examples:
        if e.task == "ack":
            system = ack_system(persona[e.persona])
        elif e.task == "question":
            system = question_system(persona[e.persona], who[e.persona], e.meta["topic"])
            # exactly how chatdoc.dialogue.respond builds the question job's system text
            assert system == (f"{persona[e.persona].strip()}\nYour next reply is one short question asking "
                              f"{who[e.persona]} {e.meta['topic']}.")
        elif e.task == "answer":
            system = answer_system(persona[e.persona], e.meta["passage"], e.meta["source_name"])
        else:
            system = persona["gp"]
        assert e.system == system, e.id
        samples = conversation_samples(convs[e.id], "unused", _count, 100_000, "train")
        assert len(samples) == 1, e.id  # target: last
        assert (samples[0].prompt, samples[0].completion) == training_pair(system, e.history, e.target), e.id
        seen[e.task] += 1
    assert all(seen[t] > 0 for t in ("ack", "question", "answer", "consult"))


@needs_shared_data
def test_ack_targets_use_only_patient_words_or_empathy_words(built):
    acks = [e for e in built[0] if e.task == "ack"]
    assert any(e.meta["kind"] == "real" for e in acks) and any(e.meta["kind"] == "reflective" for e in acks)
    for e in acks:
        assert e.history and e.history[-1].role == "patient"
        assert "?" not in e.target and _words(e.target) <= ACK_MAX_WORDS, e.target
        assert not foreign_words(e.target, e.history[-1].text), (e.history[-1].text, e.target)


@needs_shared_data
def test_question_targets_are_one_question_naming_the_item(built):
    from chatdoc.dialogue.respond import accept
    from chatdoc.train.tasks import bank_items

    items = {(i.slot, i.topic or i.slot): i for _, i in bank_items()}
    questions = [e for e in built[0] if e.task == "question"]
    for e in questions:
        assert e.target.endswith("?") and e.target.count("?") == 1, e.target
        item = items[(e.meta["slot"], e.meta["topic"])]
        audience = "parent" if e.persona == "paediatric" else "self"
        assert accept(e.target, item, audience=audience), (e.meta, e.target)  # the run-time acceptance check passes


@needs_shared_data
def test_answer_targets_are_copied_from_their_passage(built):
    answers = [e for e in built[0] if e.task == "answer"]
    for e in answers:
        assert e.history[-1].role == "patient" and e.history[-1].text.endswith("?")
        assert f"Passage: {e.meta['passage']}" in e.system
        if e.source == "refusal":
            assert e.target in REFUSALS and not re.search(r"\d", e.target)
        else:
            assert e.target in e.meta["passage"], e.id
            assert _words(e.target) <= ANSWER_MAX_WORDS and _words(e.meta["passage"]) <= 90


@needs_shared_data
def test_split_by_source_conversation(built):
    groups = defaultdict(set)
    for e in built[0]:
        groups[e.group].add(e.split)
    assert all(len(v) == 1 for v in groups.values())
    assert not any(g.startswith("mts-valid-") for g in groups)  # MTS validation is the eval set


@needs_shared_data
def test_cli_tasks(tmp_path):
    from chatdoc.cli import app

    out = tmp_path / "t.jsonl"
    r = CliRunner().invoke(app, ["train", "tasks", "--out", str(out), "--limit-per-task", "20", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["written"]["examples"] == sum(v["total"] for v in rep["tasks"].values())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == rep["written"]["examples"]
    assert all(r["target"] == "last" and r["split"] in ("train", "validation") for r in rows)
