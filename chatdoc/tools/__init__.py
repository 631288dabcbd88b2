"""Tooling around the product: benchmarks, evaluators, dev-set builders and test harnesses.

Only the CLI (``chatdoc/commands``) and the tests import this package; the product packages never do
(``tests/test_layering.py`` keeps it so). Tools drive the product through the same code the UI uses.

* :mod:`chatdoc.tools.bench` -- speed: model (``llm``), end-to-end (``run``), dialogue turns, UI in a browser;
* :mod:`chatdoc.tools.eval` -- triage, PII (and its dev-set generator), adapter, consultation, summary;
* :mod:`chatdoc.tools.harness` -- the real app in a subprocess, driven by Playwright (tests, UI bench);
* :mod:`chatdoc.tools.lora` -- random LoRA adapters for tests and benchmarks.
"""
