"""Researcher view: adapter list, switch the adapter for new consultations, compare and save."""

from __future__ import annotations

import pytest

from chatdoc.tools.harness import login
from tests.ui.conftest import RESEARCHER, STAFF, shot

pytestmark = pytest.mark.slow


def test_staff_cannot_open_the_lab(ui_app, new_page):
    page = new_page()
    page.goto(ui_app.base + "/lab/")
    page.wait_for_selector("#login-form input[type=password]")
    page.fill("#username", STAFF[0])
    page.fill("#password", STAFF[1])
    page.click("#login-btn")
    page.wait_for_selector("#login-error")
    assert page.query_selector("#adapter-table") is None
    page.goto(ui_app.base + "/lab/")  # still not logged in to the lab
    page.wait_for_selector("#login-form")


def test_switch_adapter_and_compare(ui_app, new_page):
    page = new_page()
    login(page, ui_app.base, "lab", *RESEARCHER, expect="#adapter-table")
    assert "rand-a" in page.inner_text("#adapter-table")
    page.click("#active-adapter input")
    page.click("[role=option]:has-text('rand-a')")
    page.click("#activate-btn")
    page.wait_for_selector("#lab-ok")
    page.wait_for_function("() => document.querySelector('#adapter-table').innerText.includes('active')")
    shot(page, "lab_adapter_active")

    page.fill("#compare-input textarea", "I have had a dry cough for a week\nIt is worse at night")
    page.wait_for_function("() => document.querySelector('#compare-adapters input[type=checkbox]')?.checked")
    page.click("#compare-btn")
    page.wait_for_selector("#comparison", timeout=300_000)
    cols = page.query_selector_all("#comparison .col")
    assert len(cols) == 2
    names = [c.get_attribute("data-adapter") for c in cols]
    assert names[0] == "(base model)" and names[1] == "rand-a"
    for c in cols:
        assert len(c.query_selector_all("li")) == 2  # one reply per scripted message
    page.click("#save-compare-btn")
    page.wait_for_selector("#lab-saved", timeout=60_000)
    shot(page, "lab_comparison")

    # back to the base model so other tests see the default
    page.click("#active-adapter input")
    page.click("[role=option]:has-text('(base model)')")
    page.click("#activate-btn")
    page.wait_for_function("() => !document.querySelector('#adapter-table').innerText.includes('active')")
