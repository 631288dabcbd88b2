"""The real default model (gemma-3-270m, nf4), loaded once per test run and shared."""

import pytest


@pytest.fixture(scope="session")
def backend():
    from chatdoc.llm import get_backend

    return get_backend(kind="transformers")  # the reference backend; model.backend: auto picks llama.cpp on CPU
