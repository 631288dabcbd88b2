"""Where the shared public datasets are (settings ``train.data_dir``, default ``../shared/data``)."""

import pytest

from chatdoc.config import load_settings

_s = load_settings()
SHARED_DATA = _s.path(_s.train.data_dir)
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "agentclinic").is_dir(), reason=f"shared data not found at {SHARED_DATA}"
)
