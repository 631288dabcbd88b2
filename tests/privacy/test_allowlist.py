"""The allow-list file compiles, covers the required eponyms, and its errors are clear."""

import pytest

from chatdoc.config import get_settings
from chatdoc.privacy.allowlist import AllowListError, load_allow_list

REQUIRED = ["Crohn's", "Parkinson's", "Hashimoto's", "Bell's palsy", "Addison's", "Alzheimer's", "Graves'", "Cushing's",
            "Down syndrome", "Tourette's", "Raynaud's", "Meniere's", "Hodgkin's", "Huntington's", "Guillain-Barré",
            "Sjögren's", "Asperger's"]


@pytest.fixture(scope="module")
def allow():
    s = get_settings()
    return load_allow_list(s.path(s.privacy.allow_list_file))


@pytest.mark.parametrize("term", REQUIRED)
def test_required_eponyms_listed_and_variants_match(allow, term):
    for variant in (term, term.lower(), term.replace("'s", "s").replace("'", ""), term.replace("'", "’")):
        assert allow.spans(f"I have {variant} disease"), variant


@pytest.mark.parametrize("phrase", ["for 3 days", "since yesterday", "last week", "on Monday", "2 weeks ago",
                                    "500mg", "metformin", "twice a day", "72 years old"])
def test_patterns_cover_clinical_phrases(allow, phrase):
    assert allow.is_allowed(phrase)


def test_bad_files_fail_clearly(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("patterns:\n  - name: broken\n    regex: '(unclosed'\n")
    with pytest.raises(AllowListError, match="broken"):
        load_allow_list(bad)
    with pytest.raises(AllowListError, match="not found"):
        load_allow_list(tmp_path / "missing.yaml")
