"""Shared test set-up: isolated data dir, real fixtures from tests/fixtures_*.py."""

import os
import tempfile

# Isolate every run from the user's data dir and any personal config before chatdoc is imported.
_tmp = tempfile.mkdtemp(prefix="chatdoc-test-")
os.environ["CHATDOC_DATA_DIR"] = _tmp
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for k in ("CHATDOC_PROFILE", "CHATDOC_CONFIG", "CHATDOC_REDIS_URL"):
    os.environ.pop(k, None)

pytest_plugins = ["tests.fixtures_model", "tests.fixtures_redis", "tests.fixtures_app"]
