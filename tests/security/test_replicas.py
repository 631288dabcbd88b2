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


@pytest.fixture(scope="module")
def proxy(auth_app, auth_app_b, tmp_path_factory):
    """Debian nginx on loopback in front of both replicas, from configs/nginx/chatdoc.conf."""
    import shutil
    import subprocess
    import time
    from urllib.parse import urlsplit

    from chatdoc.config import REPO_ROOT
    from chatdoc.tools.harness import free_port

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = tmp_path_factory.mktemp("nginx")
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / d).mkdir()
    port = free_port()
    servers = " ".join(f"server {urlsplit(a.base).netloc};" for a in (auth_app, auth_app_b))
    conf = (REPO_ROOT / "configs" / "nginx" / "chatdoc.conf").read_text()
    conf = conf.replace("__PREFIX__", str(prefix)).replace("__LISTEN__", f"127.0.0.1:{port}")
    (prefix / "nginx.conf").write_text(conf.replace("__UPSTREAM_SERVERS__", servers))
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"nginx did not start: {proc.stderr.read().decode()[-500:]}")
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_behind_nginx_streaming_logins_and_staff_work(proxy, auth_app, new_page):
    """A real browser through the proxy: a patient consultation streams, staff log in and see it."""
    from chatdoc.tools.harness import consent, login, open_patient, send_timed

    page = new_page()
    open_patient(page, proxy)
    consent(page)
    send_timed(page, "I have had a sore throat for three days")
    sid = page.inner_text("#resume-code").strip()
    bots = page.eval_on_selector_all("#chat [data-testid=bot]", "els => els.map(e => e.innerText.trim())")
    assert len(bots) >= 2 and bots[-1]
    staff = new_page()
    login(staff, proxy, "staff", *STAFF, expect="#consult-table")
    assert sid[:10] in staff.inner_text("#consult-table")
    # the app saw the client's address from the proxy (X-Forwarded-For), and the proxy's Host with its port
    r = httpx.get(proxy + "/healthz", headers={"Origin": "https://evil.example"}, timeout=30)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
