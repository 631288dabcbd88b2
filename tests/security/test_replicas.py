"""Two app processes (replicas) sharing one Redis: log-ins, log-outs, throttling and consultations carry across."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures_app import STAFF
from tests.security.conftest import csrf_token, login_client
from tests.security.gradio_raw import GradioRaw

pytestmark = pytest.mark.slow


def test_a_session_made_on_one_replica_works_and_ends_on_the_other(auth_app, auth_app_b):
    a = login_client(auth_app.base, STAFF, **{"X-Forwarded-For": "192.0.2.50"})
    b = httpx.Client(base_url=auth_app_b.base, timeout=60, cookies=a.cookies)
    assert b.get("/staff/config").status_code == 200
    page = b.get("/staff/")
    assert page.status_code == 200
    # log out on B with the CSRF token B renders: A no longer accepts the session
    csrf = csrf_token(b)
    assert b.post("/auth/logout", data={"csrf": csrf, "next": "/staff/"}).status_code == 303
    assert a.get("/staff/config").status_code == 401


def test_failed_logins_count_across_replicas(auth_app, auth_app_b):
    def attempt(app, password):
        return httpx.post(app.base + "/auth/login", timeout=60, headers={"X-Forwarded-For": "198.51.100.77"},
                          data={"username": "nobody.real", "password": password, "next": "/staff/"}).status_code

    codes = [attempt(auth_app if i % 2 else auth_app_b, f"x{i}") for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429, codes


def test_a_consultation_started_on_one_replica_continues_on_the_other(auth_app, auth_app_b):
    a = GradioRaw(auth_app.base)
    a.call(a.fn_index("on_load"), [])
    res = a.call(a.fn_index("on_consent"), [None])
    sid = re.search(r'resume-code\\">([A-Za-z0-9_-]{22,64})<', a.outputs_text(res)).group(1)
    assert a.call(a.fn_index("on_send"), ["I have had a sore throat for two days", None])["messages"][-1]["success"]
    b = GradioRaw(auth_app_b.base)
    b.call(b.fn_index("on_load"), [])
    resumed = b.outputs_text(b.call(b.fn_index("on_resume"), [sid, None]))
    assert "sore throat for two days" in resumed and "resume-ok" in resumed
    out = b.call(b.fn_index("on_send"), ["No fever, just pain when swallowing", None])
    assert out["messages"][-1]["success"]
    staff = GradioRaw(auth_app.base, "/staff", client=login_client(auth_app.base, STAFF,
                                                                   **{"X-Forwarded-For": "192.0.2.51"}))
    listing = staff.outputs_text(staff.call(0, ["any", "any"]))
    assert sid[:10] in listing  # staff on either replica see it
