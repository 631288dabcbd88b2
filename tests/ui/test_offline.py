"""Fully offline: a fresh load of each view (patient, staff, lab) requests nothing outside 127.0.0.1.

This test checks only its own pages; the requests of every other UI test page are checked when the
session's browser closes (``browser`` in tests/fixtures_app.py), so no test depends on running last.
"""

from __future__ import annotations

import pytest

from chatdoc.tools.harness import login, open_patient
from tests.fixtures_app import external_requests
from tests.ui.conftest import RESEARCHER, STAFF, shot

pytestmark = pytest.mark.slow


def test_no_request_leaves_localhost(ui_app, new_page):
    page = new_page()
    open_patient(page, ui_app.base)
    page.wait_for_timeout(1500)
    login(page, ui_app.base, "staff", *STAFF, expect="#consult-table, #consult-empty")
    page.wait_for_timeout(1500)
    page2 = new_page()
    login(page2, ui_app.base, "lab", *RESEARCHER, expect="#adapter-table")
    page2.wait_for_timeout(1500)
    shot(page2, "lab_after_login")
    requests = page.requests + page2.requests
    assert requests, "no requests were recorded"
    assert external_requests(requests) == []
    assert [u for u in requests if "fonts.googleapis" in u or "fonts.gstatic" in u] == []
