"""Grounded answers to a patient's knowledge question: one or two sentences from (or checked against) MedQuAD.

* ``extractive`` (default, and the fallback): the passage sentences most similar to the question (MiniLM),
  at most ``max_sentences`` and about ``MAX_WORDS`` words. Sentences that state doses, are list/header
  fragments, or tell the reader they have a disease are never used: a knowledge answer explains, it does not
  prescribe or diagnose.
* ``model`` (``generate`` given): the model words an answer from a short excerpt (``generate(question, excerpt,
  source)``; the prompt is the model's "answer" job in ``chatdoc.llm.jobs``, kept out of this library); only its
  sentences that pass :func:`chatdoc.knowledge.support.supported` against that excerpt (and the same
  dose/diagnosis filter) are kept. If none survives, the extractive answer is returned with the reason.
* ``none``: nothing relevant was retrieved; the caller says it cannot answer that from its sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from chatdoc.clinical.embed import encode
from chatdoc.knowledge.retrieve import Passage, retrieve
from chatdoc.knowledge.support import supported
from chatdoc.knowledge.words import sentences

MAX_WORDS = 60  # whole answer
MAX_SENTENCE_WORDS = 40
MIN_SENTENCE_WORDS = 5
EXCERPT_SENTENCES = 5  # sentences of the passage shown to the model
SENTENCES_PER_PASSAGE = 10  # eligible sentences scored per passage (bounds the embedding cost)

_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:-\s*\d+(?:[.,]\d+)?\s*)?(?:mg|milligrams?|mcg|micrograms?|µg|ug|g|grams?|ml|"
    r"millilit(?:er|re)s?|l|units?|iu|tablets?|pills?|capsules?|caplets?|drops?|puffs?|doses?|teaspoons?|tsp|"
    r"tablespoons?)\b"
    r"|\b(?:one|two|three|four|five|six|half|a)\s+(?:tablets?|pills?|capsules?|puffs?|teaspoons?)\b"
    r"|\btake\s+(?:\d+|one|two|three|four|five|six|half|an?\s+(?:tablet|pill|capsule|dose))\b"
    r"|\b(?:dose|dosage)\s+(?:of|is)\b|\bper\s+(?:kg|kilogram)\b", re.I)
_FRAGMENT = re.compile(
    r"\bkey points\b|\bkey words\b|\bclick\b|https?:|www\.|\.gov\b|\bthis (?:page|section|summary|topic|fact sheet)\b|"
    r"\bcheck out\b|\bwatch the video\b|\bsee the\b|\bsee also\b|\bfollowing (?:list|table)\b|\btable below\b|"
    r"\bPDQ\b|\bcall 1-|\bthe NIH\b|\bNational Institute", re.I)
_YOU_HAVE = re.compile(
    r"\byou(?:r (?:child|baby|son|daughter))?\s+(?:(?:may|might|could|probably|likely|definitely)\s+)?"
    r"(?:have|has|are suffering from|ve got|have got|are diagnosed with)\b", re.I)
_CONDITIONAL = re.compile(r"\b(?:if|when|whenever|once|whether|after|before|until|unless|while|because|who|that)\b",
                          re.I)
# NIHSeniorHealth answers open with a Title Case header glued to the first sentence:
# "Sudden, Intense Joint Pain Gout is a form of arthritis ..." -> "Gout is a form of arthritis ..."
_GLUED_HEADER = re.compile(r"^(?:(?:[A-Z][\w'-]*|of|and|the|a|an|at|in|on|for|to|with|by|or|from|[\d]+),?\s+){2,}?"
                           r"(?=[A-Z][\w'-]*\s+[a-z])")


@dataclass
class GroundedAnswer:
    """An answer and where it came from; ``supported`` is True only for a non-empty, fully checked answer."""

    text: str
    sentences: list[str]
    passage: Passage | None
    url: str | None
    title: str | None
    supported: bool
    method: str  # "extractive" | "model" | "none"
    reason: str
    scores: list[float] = field(default_factory=list)  # question similarity of each sentence


def is_safe_sentence(sentence: str) -> bool:
    """False for sentences a knowledge answer must not contain: doses, list/header fragments, diagnoses."""
    s = sentence.strip()
    n = len(s.split())
    if not MIN_SENTENCE_WORDS <= n <= MAX_SENTENCE_WORDS or not s[0].isupper() or s[-1] not in ".!":
        return False
    if s.startswith(('"', "'")) or s.count("(") != s.count(")") or s.endswith(":"):
        return False
    if _DOSE.search(s) or _FRAGMENT.search(s):
        return False
    for m in _YOU_HAVE.finditer(s):
        if not _CONDITIONAL.search(s[:m.start()]):
            return False
    return True


_HOW_LONG = re.compile(r"\bhow long\b|\bwhen will (?:it|this|they|the \w+) (?:go|get better|clear|stop|heal)\b|"
                       r"\bgo away\b|\bget better\b|\bclear up\b|\blast\b", re.I)
#: a sentence that states how long something lasts (also what a "how long" answer must contain: dialogue.answers)
TIME_SPAN = re.compile(r"\b(?:\d+|one|two|three|four|five|six|seven|ten|few|several)(?:\s*(?:to|-|or)\s*\w+)?\s+"
                   r"(?:days?|weeks?|months?|years?|hours?)\b|\blasts?\b|\bgoes away\b|\bclears? up\b", re.I)
_TITLE_RUN = re.compile(r"^(?:[A-Z][\w'-]*\s+){3,}")


def _strip_header(sentence: str, first: bool, p: Passage) -> str:
    """Remove a glued NIHSeniorHealth header; return "" for another sentence that opens with a Title Case run
    (3+ capitalised words) other than the focus name, which is a header glued by the source ("How COPD
    Affects Airways The ...")."""
    if first and p.source == "NIHSeniorHealth":
        sentence = _GLUED_HEADER.sub("", sentence, count=1)
    run = _TITLE_RUN.match(sentence)
    if run and not p.focus.lower().startswith(run.group().strip().lower()[:len(p.focus)]):
        return ""
    return sentence


def _eligible(p: Passage) -> list[str]:
    out = []
    for i, s in enumerate(sentences(p.answer)):
        s = _strip_header(s, i == 0, p)
        if s and is_safe_sentence(s):
            out.append(s)
        if len(out) >= SENTENCES_PER_PASSAGE:
            break
    return out


def _ranked(question: str, passages: list[Passage]) -> list[tuple[float, float, Passage, int, str]]:
    """(rank score, question similarity, passage, position, sentence) for every eligible sentence, best first.

    Rank score = sentence similarity + half the passage's relevance, so a good sentence in the most relevant
    passage wins over a slightly better one in a passage about something else."""
    items = [(p, i, s) for p in passages for i, s in enumerate(_eligible(p))]
    if not items:
        return []
    v = encode([question, *[s for _, _, s in items]])
    sims = v[1:] @ v[0]
    timed = bool(_HOW_LONG.search(question))  # "how long ...?": a sentence that gives a time span answers it
    out = [(float(sim) + 0.5 * p.score + (0.15 if timed and TIME_SPAN.search(s) else 0.0), float(sim), p, i, s)
           for sim, (p, i, s) in zip(sims, items)]
    return sorted(out, key=lambda t: -t[0])


def _pick(ranked, max_sentences: int) -> tuple[Passage, list[tuple[int, str, float]]]:
    """The best sentence, plus the next best of the same passage while the answer stays short and on point."""
    _, best_sim, passage, pos, sent = ranked[0]
    chosen = [(pos, sent, best_sim)]
    words = len(sent.split())
    for _, sim, p, i, s in ranked[1:]:
        if len(chosen) >= max_sentences:
            break
        if p is passage and sim >= best_sim - 0.15 and words + len(s.split()) <= MAX_WORDS and s != sent:
            chosen.append((i, s, sim))
            words += len(s.split())
    return passage, sorted(chosen)


def _result(passage: Passage, chosen: list[tuple[int, str, float]], method: str, reason: str) -> GroundedAnswer:
    sents = [s for _, s, _ in chosen]
    return GroundedAnswer(" ".join(sents), sents, passage, passage.url, passage.focus, bool(sents), method, reason,
                          [round(x, 3) for _, _, x in chosen])


def _extractive(question: str, passages: list[Passage], max_sentences: int, reason: str) -> GroundedAnswer:
    ranked = _ranked(question, passages)
    if not ranked:
        p = passages[0]
        return GroundedAnswer("", [], p, p.url, p.focus, False, "none",
                              "relevant passage found but no sentence is suitable to quote")
    passage, chosen = _pick(ranked, max_sentences)
    return _result(passage, chosen, "extractive", reason)


def excerpt(question: str, passage: Passage, n: int = EXCERPT_SENTENCES) -> str:
    """The ``n`` eligible passage sentences most similar to the question, in passage order (the model's input)."""
    ranked = [t for t in _ranked(question, [passage])][:n]
    return " ".join(s for _, _, _, _, s in sorted(ranked, key=lambda t: t[3]))


def _close(passages: list[Passage], margin: float = 0.1) -> list[Passage]:
    """The passages nearly as relevant as the best one (where the answer's sentences may come from)."""
    return [p for p in passages if p.score >= passages[0].score - margin]


def grounded_answer(question: str, *, generate: Callable[[str, str, str], str | None] | None = None,
                    max_sentences: int = 2) -> GroundedAnswer:
    """A short answer grounded in MedQuAD, or ``method="none"`` when nothing relevant is retrieved.

    ``generate(question, excerpt, source)``: the model's wording from the excerpt (None or "" = no answer)."""
    passages = retrieve(question, k=3)
    if not passages:
        return GroundedAnswer("", [], None, None, None, False, "none", "nothing relevant retrieved")
    if generate is None:
        return _extractive(question, _close(passages), max_sentences, "extracted from the most relevant passage")
    top = passages[0]
    text = excerpt(question, top)
    if not text:
        return _extractive(question, passages, max_sentences, "the top passage had no usable sentence for the model")
    try:
        out = generate(question, text, top.source) or ""
    except Exception as e:  # the model is optional; a failure falls back to quoting the source
        return _extractive(question, passages, max_sentences, f"model failed ({type(e).__name__}); extracted instead")
    kept: list[tuple[int, str, float]] = []
    words = 0
    for i, s in enumerate(sentences(out)):
        if len(kept) >= max_sentences:
            break
        if is_safe_sentence(s) and supported(s, text) and words + len(s.split()) <= MAX_WORDS:
            kept.append((i, s, float("nan")))
            words += len(s.split())
    if not kept:
        return _extractive(question, _close(passages), max_sentences,
                           "no model sentence was supported by the passage; extracted instead")
    ans = _result(top, kept, "model", "model sentences checked against the passage")
    ans.scores = []
    return ans
