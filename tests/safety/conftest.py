import pytest

from chatdoc.safety import assess


@pytest.fixture(scope="session")
def triage():
    """assess() with the shipped rules (warm spaCy once per run)."""
    assess(["warm up"])
    return assess
