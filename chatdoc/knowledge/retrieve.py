"""Retrieval of MedQuAD passages for a patient's knowledge question: BM25 recall, MiniLM rerank, threshold.

1. BM25 (``rank_bm25.BM25Okapi``) over the stems of each record's question + focus + the first words of its
   answer recalls the top ``POOL`` candidates. Lexical recall is cheap (no embedding of 16k answers at start-up)
   and the index builds in a few seconds.
2. The candidates' questions ("What is (are) Gout ?" -> "What is Gout?") are embedded with the project's one
   MiniLM (``chatdoc.clinical.embed``) and ranked by cosine to the patient's question. Question vectors are
   memoised per process; ``configure(vector_dir=...)`` keeps them on disk (``question_vectors.npz``) so a warm
   cache needs only the patient's question embedded per query.
3. Only passages whose cosine is at least ``THRESHOLD`` (chosen on tests/knowledge/dev_questions.jsonl, see
   docs/KNOWLEDGE.md) are returned: "when will someone call me?" gets ``[]``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatdoc.clinical.embed import encode
from chatdoc.knowledge.corpus import Record, records
from chatdoc.knowledge.words import content_stems, expand_lay

POOL = 30  # BM25 candidates reranked
ANSWER_WORDS = 40  # words of the answer's start added to the BM25 document (lay words, synonyms)
THRESHOLD = 0.50  # minimum cosine(patient question, passage question) to count as relevant


@dataclass(frozen=True)
class Passage:
    """One retrieved MedQuAD answer; ``score`` is the rerank cosine (higher = more relevant)."""

    id: str
    question: str
    answer: str
    url: str
    source: str
    focus: str
    qtype: str
    score: float


_TEMPLATE = re.compile(r"\s*\(are\)\s*|\s*\?(?:\s*\?)*\s*$")


def clean_question(q: str) -> str:
    """MedQuAD's templated question in plain form: "What is (are) Gout ?" -> "What is Gout?"."""
    return _TEMPLATE.sub(lambda m: " " if "(are)" in m.group() else "?", q).strip()


SAVE_EVERY = 256  # new question vectors before the memo is written to the vector directory


class KnowledgeIndex:
    """BM25 over the knowledge base plus a memo of question vectors; safe to share between threads."""

    def __init__(self, recs: tuple[Record, ...] | list[Record], vector_dir: Path | None = None) -> None:
        from rank_bm25 import BM25Okapi

        self.records = tuple(recs)
        self.keys = [clean_question(r.question) for r in self.records]
        docs = [content_stems(f"{r.question} {r.focus} {' '.join(r.answer.split()[:ANSWER_WORDS])}", correct=True)
                for r in self.records]
        self.bm25 = BM25Okapi(docs)
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.by_id = {r.id: r for r in self.records}
        self._unsaved = 0
        self._vector_file = Path(vector_dir) / "question_vectors.npz" if vector_dir else None
        if self._vector_file and self._vector_file.is_file():
            data = np.load(self._vector_file, allow_pickle=False)
            self._vectors.update(zip(data["keys"].tolist(), data["vectors"].astype(np.float32)))

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` (memoised; the missing ones are encoded in one batch)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            new = encode(missing)
            with self._lock:
                self._vectors.update(zip(missing, new))
                self._unsaved += len(missing)
                save = self._vector_file is not None and self._unsaved >= SAVE_EVERY
            if save:  # the memo survives a restart (a topic's first query encodes up to POOL questions)
                try:
                    self.save_vectors()
                except OSError:
                    pass
        with self._lock:
            return np.stack([self._vectors[t] for t in texts])

    def save_vectors(self) -> Path | None:
        """Write every memoised question vector to the vector directory (float16)."""
        if not self._vector_file:
            return None
        with self._lock:
            keys = list(self._vectors)
            vecs = np.stack([self._vectors[k] for k in keys]).astype(np.float16)
            self._unsaved = 0
        self._vector_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self._vector_file, keys=np.array(keys), vectors=vecs)
        return self._vector_file

    def candidates(self, question: str, pool: int = POOL) -> list[int]:
        """Indices of the BM25 top ``pool`` records with a positive score, best first."""
        toks = content_stems(expand_lay(question), correct=True)
        if not toks:
            return []
        scores = self.bm25.get_scores(toks)
        top = np.argpartition(-scores, min(pool, len(scores) - 1))[:pool]
        return [int(i) for i in top[np.argsort(-scores[top])] if scores[i] > 0]

    def search(self, question: str, k: int = 3, threshold: float = THRESHOLD) -> list[Passage]:
        """The ``k`` best passages at or above ``threshold`` (``[]`` when nothing is relevant)."""
        question = expand_lay(question)
        cand = self.candidates(question)
        if not cand:
            return []
        q = encode([question])[0]
        sims = self.vectors([self.keys[i] for i in cand]) @ q
        order = np.argsort(-sims)
        out = []
        for j in order[:k]:
            if sims[j] < threshold:
                break
            r = self.records[cand[j]]
            out.append(Passage(r.id, r.question, r.answer, r.url, r.source, r.focus, r.qtype, float(sims[j])))
        return out


_INDEX: KnowledgeIndex | None = None
_INDEX_LOCK = threading.Lock()
_VECTOR_DIR: Path | None = None


def configure(vector_dir: Path | str | None) -> None:
    """Keep question vectors on disk under ``vector_dir`` (call before the first ``retrieve``)."""
    global _VECTOR_DIR, _INDEX
    with _INDEX_LOCK:
        _VECTOR_DIR = Path(vector_dir) if vector_dir else None
        _INDEX = None


def get_index() -> KnowledgeIndex:
    """The process-wide index, built on first use (once, even with concurrent callers)."""
    global _INDEX
    if _INDEX is None:
        with _INDEX_LOCK:
            if _INDEX is None:
                _INDEX = KnowledgeIndex(records(), _VECTOR_DIR)
    return _INDEX


def get_passage(passage_id: str) -> Passage | None:
    """The passage with this id (e.g. the one an answer cites), or None."""
    r = get_index().by_id.get(passage_id)
    return None if r is None else Passage(r.id, r.question, r.answer, r.url, r.source, r.focus, r.qtype, 1.0)


def retrieve(question: str, k: int = 3) -> list[Passage]:
    """Up to ``k`` relevant MedQuAD passages for a patient's question, best first; ``[]`` when none is relevant."""
    if not question or not question.strip():
        return []
    return get_index().search(question, k)
