"""One Redactor shared by all privacy tests (spaCy + Presidio are built once per run)."""

import pytest


@pytest.fixture(scope="session")
def redactor():
    from chatdoc.privacy import get_redactor

    return get_redactor()
