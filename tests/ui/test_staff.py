"""Staff view: refused to anonymous requests (page and API), works after log-in; review, approve, export,
erase; patient text (an XSS payload) shows as literal text."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from chatdoc.tools.harness import consent, login, open_patient, send_timed
from tests.ui.conftest import RESEARCHER, STAFF, shot

pytestmark = pytest.mark.slow

XSS = "<img src=x onerror=alert(1)> my chest hurts"


@pytest.fixture(scope="module")
def xss_consultation(ui_app, browser):
    """A real consultation whose patient text carries an XSS payload; returns its session id."""
    ctx = browser.new_context()
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_patient(page, ui_app.base)
    consent(page)
    send_timed(page, XSS)
    send_timed(page, "It started an hour ago")
    sid = page.inner_text("#resume-code").strip()
    users = page.eval_on_selector_all("#chat [data-testid=user]", "els => els.map(e => e.innerText.trim())")
    assert users[0] == XSS  # literal on the patient page too
    assert not dialogs and page.query_selector("#chat img") is None
    ctx.close()
    return sid


def _staff_page(new_page, ui_app):
    page = new_page()
    login(page, ui_app.base, "staff", *STAFF, expect="#consult-table, #consult-empty")
    return page


def _open(page, sid):
    page.click("#consult-pick input")
    page.click(f"[role=option]:has-text('{sid[:8]}')")
    page.wait_for_selector("#transcript", timeout=180_000)
    page.wait_for_selector("#structured-summary", timeout=180_000)


def test_anonymous_requests_get_no_consultation_data(ui_app, xss_consultation):
    sid = xss_consultation
    c = httpx.Client(base_url=ui_app.base, timeout=30)
    for view in ("staff", "lab"):
        for path in (f"/{view}/config", f"/{view}/gradio_api/info", f"/{view}/gradio_api/openapi.json"):
            r = c.get(path)
            assert r.status_code in (401, 404), (path, r.status_code)
        r = c.get(f"/{view}/")
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login")
        assert sid not in r.text and "my chest hurts" not in r.text
        for fn in range(0, 12):
            r = c.post(
                f"/{view}/gradio_api/queue/join",
                json={"data": ["any", "any", ""], "fn_index": fn, "session_hash": "anon123", "event_data": None},
            )
            assert r.status_code in (401, 404), (view, fn, r.status_code, r.text[:200])
        for name in ("on_load", "on_filter", "on_pick", "predict"):
            r = c.post(f"/{view}/gradio_api/call/{name}", json={"data": []})
            assert r.status_code in (401, 404), (name, r.status_code)
            r = c.post(f"/{view}/gradio_api/run/{name}", json={"data": []})
            assert r.status_code in (401, 404), (name, r.status_code)
        r = c.get(f"/{view}/gradio_api/queue/data", params={"session_hash": "anon123"})
        assert r.status_code == 401
        r = c.get(f"/{view}/gradio_api/file=/etc/hostname")
        assert r.status_code in (401, 403, 404)
    # the public patient app's config and API page carry no consultation data either
    for path in ("/config", "/gradio_api/info", "/"):
        r = c.get(path)
        assert sid not in r.text and "my chest hurts" not in r.text, path
    # Gradio's own log-in routes are closed; a researcher cannot log in to the staff view, nor staff to the lab
    assert c.post("/staff/login", data={"username": STAFF[0], "password": STAFF[1]}).status_code == 404
    assert c.post("/auth/login", data={"username": RESEARCHER[0], "password": RESEARCHER[1],
                                       "next": "/staff/"}).status_code == 401
    assert c.post("/auth/login", data={"username": STAFF[0], "password": STAFF[1], "next": "/lab/"}).status_code == 401
    assert c.post("/auth/login", data={"username": STAFF[0], "password": "wrong", "next": "/staff/"}).status_code == 401
    # after log-in the same routes work
    r = c.post("/auth/login", data={"username": STAFF[0], "password": STAFF[1], "next": "/staff/"})
    assert r.status_code == 303 and r.headers["location"] == "/staff/"
    assert c.get("/staff/config").status_code == 200
    # ... and the staff cookie does not open the lab
    assert c.get("/lab/config").status_code == 401


def test_staff_page_refuses_anonymous_browser(ui_app, new_page, xss_consultation):
    page = new_page()
    page.goto(ui_app.base + "/staff/")
    page.wait_for_selector("#login-form input[type=password]")
    assert xss_consultation[:8] not in page.content()
    assert page.query_selector("#consult-table") is None
    shot(page, "staff_login")


def test_xss_payload_renders_as_text_on_staff_page(ui_app, new_page, xss_consultation):
    page = _staff_page(new_page, ui_app)
    shot(page, "staff_list")
    _open(page, xss_consultation)
    transcript = page.inner_text("#transcript")
    assert "<img src=x onerror=alert(1)>" in transcript
    assert page.query_selector("#transcript img, #structured-summary img, #consult-table img") is None
    page.wait_for_timeout(500)
    assert page.dialogs == [], page.dialogs
    shot(page, "staff_detail_xss")


def test_edit_approve_export_and_delete(ui_app, new_page, xss_consultation):
    sid = xss_consultation
    page = _staff_page(new_page, ui_app)
    _open(page, sid)
    page.fill("#summary-text textarea", "Chest pain for one hour. Reviewed by staff.")
    page.click("#save-summary-btn")
    page.wait_for_selector("#staff-ok")
    page.click("#approve-btn")
    page.wait_for_function(
        "(u) => (document.querySelector('#approval.ok')||{}).innerText?.includes(u)", arg=STAFF[0], timeout=60_000
    )
    assert STAFF[0] in page.inner_text("#approval")
    shot(page, "staff_approved")

    page.click("#export-json-btn")
    link = page.wait_for_selector("#export-file a[download], #export-file a", timeout=60_000)
    with page.expect_download() as dl:
        link.click()
    data = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert sid in json.dumps(data)

    page.click("#export-md-btn")
    page.wait_for_function("() => (document.querySelector('#export-file')||{}).innerText?.includes('.md')")
    with page.expect_download() as dl:
        page.click("#export-file a")
    md = open(dl.value.path(), encoding="utf-8").read()
    # the service escapes patient text in Markdown exports: no raw (un-backslashed) tag
    assert "img src=x" in md and not re.search(r"(?<!\\)<img", md)

    # filters: never ended, so not under "closed"; back under "any"
    page.click("#filter-status input")
    page.click("[role=option]:has-text('closed')")
    page.wait_for_function("(s) => !document.querySelector('#consult-list').innerText.includes(s)", arg=sid[:10])
    page.click("#filter-status input")
    page.click("[role=option]:has-text('any')")
    page.wait_for_function("(s) => document.querySelector('#consult-list').innerText.includes(s)", arg=sid[:10])

    page.click("#delete-btn")
    page.wait_for_selector("#delete-warning", state="visible")
    page.click("#delete-confirm-btn")
    page.wait_for_selector("#staff-deleted", timeout=60_000)
    assert sid[:8] not in page.inner_text("#consult-list")
    r = httpx.get(ui_app.base + f"/?session={sid}", timeout=30)
    assert r.status_code == 200
