"""Grounded answers to patients' knowledge questions from MedQuAD (NIH question–answer pairs, CC BY 4.0).

``retrieve`` finds relevant passages (BM25 + MiniLM rerank + threshold); ``grounded_answer`` returns one or two
sentences quoted from, or checked against, the best passage, with its URL. See docs/KNOWLEDGE.md.
"""

from chatdoc.knowledge.answer import GroundedAnswer, grounded_answer, is_safe_sentence
from chatdoc.knowledge.retrieve import THRESHOLD, Passage, configure, get_index, get_passage, retrieve
from chatdoc.knowledge.support import supported

__all__ = ["THRESHOLD", "GroundedAnswer", "Passage", "configure", "get_index", "get_passage", "grounded_answer",
           "is_safe_sentence", "retrieve", "supported"]
