"""Findings 5 (exports), 8 (deep links) and the app-side parts of 10 (fn_index, uploads, audit log)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from chatdoc.tools.harness import consent, login, open_patient, send_timed
from tests.fixtures_app import RESEARCHER, STAFF
from tests.security.conftest import login_client
from tests.security.gradio_raw import GradioRaw

pytestmark = pytest.mark.slow

NHS = "943 476 5919"
NAME = "Zebediah Quarrington"


@pytest.fixture(scope="module")
def patient_session(ui_app, browser):
    """A real patient consultation in the browser that gave a raw name and NHS number."""
    ctx = browser.new_context()
    page = ctx.new_page()
    open_patient(page, ui_app.base)
    consent(page)
    send_timed(page, f"My name is {NAME} and my NHS number is {NHS}. I have had a sore throat for three days")
    sid = page.inner_text("#resume-code").strip()
    yield sid, page
    ctx.close()


def _all_files_containing(roots, needle: bytes) -> list[str]:
    hits = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                try:
                    if needle in p.read_bytes():
                        hits.append(str(p))
                except OSError:
                    pass
    return hits


def test_deep_links_are_closed_and_nothing_raw_reaches_disk(ui_app, patient_session):
    sid, page = patient_session
    for prefix in ("", "/staff", "/lab"):
        for sh in ("anything", sid):
            r = httpx.get(ui_app.base + prefix + "/gradio_api/deep_link", params={"session_hash": sh}, timeout=30)
            assert r.status_code == 404
    r = httpx.get(ui_app.base + "/", params={"deep_link": "a" * 32}, timeout=30)
    assert NHS not in r.text
    roots = [ui_app.data_dir, "/tmp/gradio"]
    assert _all_files_containing(roots, NHS.encode()) == []
    assert _all_files_containing(roots, NAME.encode()) == []
    cache = ui_app.data_dir / "gradio-cache"
    assert cache.is_dir() and (cache.stat().st_mode & 0o077) == 0


def test_exports_only_for_the_staff_user_once(ui_app, new_page, patient_session):
    sid, _ = patient_session
    page = new_page()
    login(page, ui_app.base, "staff", *STAFF, expect="#consult-table, #consult-empty")
    page.click("#consult-pick input")
    page.click(f"[role=option]:has-text('{sid[:8]}')")
    page.wait_for_selector("#structured-summary", timeout=180_000)
    t0 = time.time() - 1
    page.click("#export-json-btn")
    href = page.wait_for_selector("#export-link", timeout=60_000).get_attribute("href")
    assert href.startswith("/exports/")
    # not on Gradio's public file routes, not for anonymous clients, not for another logged-in user
    assert httpx.get(ui_app.base + href, timeout=30).status_code == 404
    assert login_client(ui_app.base, RESEARCHER, "/lab/").get(href).status_code == 404
    other_staff_session = login_client(ui_app.base, STAFF)  # same user, another session: fine
    r = other_staff_session.get(href)
    assert r.status_code == 200 and sid in r.text and json.loads(r.text)
    assert "attachment" in r.headers["content-disposition"] and r.headers["cache-control"] == "no-store"
    # once only
    assert other_staff_session.get(href).status_code == 404
    # never written to disk
    written = [p for root in (ui_app.data_dir, Path("/tmp")) for p in root.rglob("consultation-*")
               if p.is_file() and p.stat().st_mtime >= t0]
    assert written == []
    # the audit log names the user, the address and the consultation (not a scrubbed placeholder)
    log = [json.loads(x) for x in (ui_app.data_dir / "audit.log").read_text().splitlines()]
    actions = {(e["action"], e["user"], e["session_id"]) for e in log}
    assert ("view", STAFF[0], sid) in actions and ("export", STAFF[0], sid) in actions
    assert ("export_download", STAFF[0], sid) in actions
    assert all(e["address"] == "127.0.0.1" for e in log if e["session_id"] == sid)


@pytest.mark.parametrize("prefix", ["", "/staff", "/lab"])
def test_bad_fn_index_is_a_client_error(ui_app, prefix):
    c = login_client(ui_app.base, STAFF if prefix != "/lab" else RESEARCHER, prefix + "/" if prefix else "/staff/")
    for fn in (10_000, -1, "0", None, 1.5, True):
        r = c.post(prefix + "/gradio_api/queue/join", json={"data": [], "fn_index": fn, "session_hash": "abc123"})
        assert 400 <= r.status_code < 500, (prefix, fn, r.status_code)
    r = c.post(prefix + "/gradio_api/queue/join", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500


def test_uploads_and_large_bodies_are_refused(ui_app):
    big = b"x" * (2 * 1024 * 1024)
    for prefix in ("", "/staff", "/lab"):
        r = httpx.post(ui_app.base + prefix + "/gradio_api/upload", files={"files": ("a.txt", big)}, timeout=60)
        assert r.status_code in (404, 413), r.status_code
        r = httpx.post(ui_app.base + prefix + "/gradio_api/upload", files={"files": ("a.txt", b"small")}, timeout=60)
        assert r.status_code == 404
    g = GradioRaw(ui_app.base)
    r = g.http.post(g.url("/gradio_api/queue/join"),
                    json={"data": ["x" * 200_000, None], "fn_index": g.fn_index("on_send"), "session_hash": "s1"})
    assert r.status_code == 413
    # chunked (no Content-Length) is capped too
    def chunks():
        for _ in range(64):
            yield b"y" * 4096
    r = httpx.post(ui_app.base + "/gradio_api/queue/join", content=chunks(), timeout=60,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_staff_actions_are_audited_with_user_address_and_consultation(ui_app):
    """View, edit, approve and erase (driven through the staff view's own events) each leave an audit record."""
    import re

    patient = GradioRaw(ui_app.base)
    patient.call(patient.fn_index("on_load"), [])
    res = patient.call(patient.fn_index("on_consent"), [None])
    sid = re.search(r'resume-code\\">([A-Za-z0-9_-]{22,64})<', patient.outputs_text(res)).group(1)
    patient.call(patient.fn_index("on_send"), ["I have had earache for two days", None])

    staff = GradioRaw(ui_app.base, "/staff", client=login_client(ui_app.base, STAFF))
    assert staff.call(staff.fn_index("on_load"), ["any", "any"])["messages"][-1]["success"]
    for name, data in (("on_pick", [sid]), ("on_save", [None, "Earache for two days. Reviewed."]),
                       ("on_approve", [None, "Earache for two days. Reviewed.", "any", "any"]),
                       ("on_delete", [None, "any", "any"])):
        out = staff.call(staff.fn_index(name), data)
        assert out["messages"][-1].get("success"), (name, out["messages"][-1])
    log = [json.loads(x) for x in (ui_app.data_dir / "audit.log").read_text().splitlines()]
    mine = {e["action"]: e for e in log if e.get("session_id") == sid}
    for action in ("view", "edit_summary", "approve", "erase"):
        assert action in mine, (action, sorted(mine))
        assert mine[action]["user"] == STAFF[0] and mine[action]["address"] == "127.0.0.1" and mine[action]["time"]
