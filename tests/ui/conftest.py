"""The UI tests' fixtures live in tests/fixtures_app.py (shared with tests/security)."""

from tests.fixtures_app import RESEARCHER, REQUESTS, SHOTS, STAFF, shot  # noqa: F401
