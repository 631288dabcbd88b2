"""Knowledge answers from MedQuAD: real shipped data, the real MiniLM, no mocks (about a minute on 2 cores)."""

from __future__ import annotations

import gzip
import json
import threading

import pytest

from chatdoc.knowledge.answer import grounded_answer, is_safe_sentence
from chatdoc.knowledge.corpus import Record, read_kb, records
from chatdoc.knowledge.retrieve import KnowledgeIndex, get_index, retrieve
from chatdoc.knowledge.support import supported
from chatdoc.knowledge.words import sentences
from chatdoc.tools.build_knowledge import build


def _focus(passages) -> str:
    return passages[0].focus.lower() if passages else ""


# lay wording written for these tests (not the dev set, not a benchmark)
@pytest.mark.parametrize("question, focus", [
    ("so what exactly are shingles?", "shingles"),
    ("how many days does flu normally go on for", "flu"),
    ("my GP says my blood pressure is high - what does that mean", "high blood pressure"),
    ("does gout get passed down in families?", "gout"),
    ("what is the menopause", "menopause"),
    ("how do you get rid of head lice in kids hair", "head lice"),
])
def test_retrieval_finds_a_relevant_passage(question, focus):
    got = retrieve(question, k=3)
    assert got, question
    assert focus in _focus(got), (question, [p.focus for p in got])
    assert all(p.url.startswith("http") for p in got)
    assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)


@pytest.mark.parametrize("question", [
    "when will someone call me?", "should I be worried?", "can my daughter come in with me",
    "how long do I have to wait for the results", "where is the car park", "ok thanks, bye", "",
])
def test_nothing_relevant_for_practical_or_off_topic_questions(question):
    assert retrieve(question) == []
    ans = grounded_answer(question)
    assert (ans.method, ans.passage, ans.supported, ans.text) == ("none", None, False, "")
    assert ans.reason == "nothing relevant retrieved"


@pytest.mark.parametrize("question", ["what is psoriasis", "how do they treat glaucoma", "is my bp too high a problem"])
def test_extractive_answers_are_supported_short_and_cited(question):
    ans = grounded_answer(question)
    assert ans.method == "extractive" and ans.supported and ans.text
    assert ans.url == ans.passage.url and ans.url.startswith("http") and ans.title == ans.passage.focus
    assert 1 <= len(ans.sentences) <= 2 and len(ans.text.split()) <= 60
    for s in ans.sentences:
        assert supported(s, ans.passage.answer), s
        assert is_safe_sentence(s), s


def test_max_sentences_is_respected():
    assert len(grounded_answer("what is psoriasis", max_sentences=1).sentences) == 1


def test_model_answer_keeps_only_supported_sentences():
    calls: list[tuple[str, str, str]] = []

    def fake_generate(question: str, excerpt: str, source: str) -> str:  # an unsupported claim, then a quote
        calls.append((question, excerpt, source))
        return f"Shingles is caused by eating too much sugar as a child. {sentences(excerpt)[0]}"

    ans = grounded_answer("what is shingles", generate=fake_generate)
    question, passage, source = calls[0]
    assert question == "what is shingles" and source and passage
    assert ans.method == "model" and ans.supported
    assert ans.sentences == [sentences(passage)[0]]
    assert "sugar" not in ans.text and ans.url and ans.url.startswith("http")


def test_model_answer_with_nothing_supported_falls_back_to_extractive():
    ans = grounded_answer("what is shingles",
                          generate=lambda q, e, s: "Take 2 tablets of ibuprofen every 4 hours. You have shingles.")
    assert ans.method == "extractive" and ans.supported and ans.text
    assert "no model sentence was supported" in ans.reason
    assert "ibuprofen" not in ans.text


def test_model_failure_falls_back_to_extractive():
    def broken(question: str, excerpt: str, source: str) -> str:
        raise RuntimeError("backend down")

    ans = grounded_answer("what is gout", generate=broken)
    assert ans.method == "extractive" and ans.supported and "model failed" in ans.reason


PASSAGE = ("Shingles is a painful rash that develops on one side of the face or body. The rash forms blisters that "
           "typically scab over in 7 to 10 days and clear up within 2 to 4 weeks.")


@pytest.mark.parametrize("sentence", [
    "Shingles is a painful rash on one side of the body.",  # words all in the passage
    "The blisters scab over in 7 to 10 days.",  # numbers in the passage
    "The rash usually clears within a few weeks.",  # a plain paraphrase (MiniLM cosine >= 0.8)
])
def test_supported_accepts(sentence):
    assert supported(sentence, PASSAGE)


@pytest.mark.parametrize("sentence", [
    "The blisters scab over in 3 days.",  # a number the passage does not state
    "Shingles is treated with acyclovir.",  # a drug the passage does not name
    "Shingles mostly affects children.",  # a population the passage does not name
    "Shingles is caused by bacteria.",  # a new medical term
    "Yes.",  # nothing checkable
    "",
])
def test_supported_rejects(sentence):
    assert not supported(sentence, PASSAGE)


@pytest.mark.parametrize("sentence", [
    "Take 2 tablets every 4 hours.", "Adults usually take 400 mg of ibuprofen three times a day.",
    "The usual dose is 5 ml twice a day for children.", "Take one capsule with food.",
    "Key Points", "You have diabetes and need to see a specialist.", "What are the symptoms of gout?",
])
def test_unsafe_sentences_are_never_used(sentence):
    assert not is_safe_sentence(sentence)


def test_conditional_you_have_is_allowed():
    assert is_safe_sentence("If you have diabetes, check your feet every day.")


@pytest.mark.parametrize("question", ["how much paracetamol can I take for a fever", "what dose of aspirin for heart attack"])
def test_dose_questions_never_get_a_dose(question):
    for s in grounded_answer(question).sentences:
        assert is_safe_sentence(s), s


def test_shipped_knowledge_base():
    recs = records()
    assert len(recs) > 16000
    assert len({r.id for r in recs}) == len(recs)
    assert all(r.question and r.answer and r.url for r in recs[:2000])
    assert all("  " not in r.answer for r in recs[:2000])


def test_index_is_built_once_across_threads():
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(id(get_index()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1


def test_build_skips_and_counts_bad_records(tmp_path):
    good = {"id": "1", "source": "S", "url": "https://x", "focus": "Gout", "cui": [], "qtype": "information",
            "question": "What is (are) Gout ?", "answer": "Gout  is a\n\n   form of   arthritis."}
    src = tmp_path / "medquad.jsonl"
    src.write_text("\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({**good, "answer": ""}),  # empty answer
        json.dumps({k: v for k, v in good.items() if k != "url"}),  # missing field
        json.dumps({**good, "focus": "", "question": "What is (are)  ?"}),  # names nothing
        json.dumps(good),  # exact duplicate
        json.dumps({**good, "question": "What causes Gout ?"}),  # same id, another question
    ]), encoding="utf-8")
    rep = build(src, tmp_path / "out")
    assert (rep.read, rep.kept, rep.bad, rep.dups, rep.renamed) == (7, 2, 4, 1, 1)
    out = read_kb(tmp_path / "out" / "medquad.jsonl.gz")
    assert [r.id for r in out] == ["1", "1#2"]
    assert out[0].answer == "Gout is a\nform of arthritis."
    assert "cui" not in json.loads(gzip.open(tmp_path / "out" / "medquad.jsonl.gz", "rt").readline())
    notice = (tmp_path / "out" / "NOTICE.md").read_text()
    assert "CC BY 4.0" in notice and "Ben Abacha" in notice


def test_question_vectors_round_trip_on_disk(tmp_path):
    recs = [Record(str(i), "S", "https://x", f, "information", f"What is (are) {f} ?", f"{f} is a condition.")
            for i, f in enumerate(["Gout", "Shingles", "Asthma"])]
    idx = KnowledgeIndex(recs, vector_dir=tmp_path)
    assert idx.search("what is gout", k=1)[0].focus == "Gout"
    assert idx.save_vectors() == tmp_path / "question_vectors.npz"
    again = KnowledgeIndex(recs, vector_dir=tmp_path)
    assert "What is Gout?" in again._vectors
