"""Fully offline: no request from any page of the UI tests (and a fresh load of each view) leaves 127.0.0.1.

Named ``zz`` so that it runs after the other UI modules and also checks everything they recorded.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from chatdoc.ui.harness import login, open_patient
from tests.ui.conftest import REQUESTS, RESEARCHER, STAFF, shot

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
    assert REQUESTS, "no requests were recorded"
    external = sorted(
        {u for u in REQUESTS if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname != "127.0.0.1"}
    )
    assert external == [], external
    fonts = [u for u in REQUESTS if "fonts.googleapis" in u or "fonts.gstatic" in u]
    assert fonts == []
