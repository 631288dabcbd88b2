"""Finding 2 (high): CORS and framing. A foreign origin was allowed with credentials for a non-localhost
Host, and ``/staff/gradio_api/token`` handed out the staff token."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures_app import STAFF
from tests.security.conftest import login_client

pytestmark = pytest.mark.slow

EVIL = "https://evil.example"


def _assert_security_headers(r: httpx.Response) -> None:
    h = r.headers
    csp = h.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (r.url, csp)
    # only the app's own resources: no other origin, no wildcard in any directive
    assert not re.search(r"https?://|\*", csp), csp
    assert h.get("x-frame-options") == "DENY"
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy") == "no-referrer"
    assert not any(k.lower().startswith("access-control-") for k in h), (r.url, dict(h))


def test_foreign_origins_get_nothing_even_for_a_public_host_name(auth_app):
    host = {"Host": "clinic.example.org"}  # an allowed, non-localhost host: a deployment behind a proxy
    staff = login_client(auth_app.base, STAFF, **host)
    for path in ("/staff/gradio_api/token", "/staff/config", "/staff/", "/config", "/gradio_api/info"):
        r = staff.get(path, headers={"Origin": EVIL})
        assert r.status_code == 403, (path, r.status_code)
        assert "access-control-allow-origin" not in r.headers
        assert "token" not in r.text
        _assert_security_headers(r)
    pre = staff.options("/staff/gradio_api/queue/join",
                        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    r = staff.post("/staff/gradio_api/queue/join", headers={"Origin": EVIL},
                   json={"data": [], "fn_index": 0, "session_hash": "x1"})
    assert r.status_code == 403
    # the token route is gone for everyone, including the logged-in user's own origin
    assert staff.get("/staff/gradio_api/token").status_code == 404
    # same origin works; the configured partner origin gets CORS for credentials, nobody else does
    assert staff.get("/staff/config", headers={"Origin": "http://clinic.example.org"}).status_code == 200
    r = staff.get("/staff/config", headers={"Origin": "https://portal.example.org"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://portal.example.org"


def test_unknown_host_names_are_refused(auth_app):
    for host in ("evil.example", "clinic.example.org.evil.example", "localhost.evil.example"):
        r = httpx.get(auth_app.base + "/healthz", headers={"Host": host}, timeout=30)
        assert r.status_code == 400, host
    assert httpx.get(auth_app.base + "/healthz", headers={"Host": "clinic.example.org:443"}, timeout=30).status_code in (
        200, 503)


def test_every_response_carries_the_security_headers(ui_app):
    c = httpx.Client(base_url=ui_app.base, timeout=30)
    page = c.get("/")
    asset = re.search(r'src="\./(assets/[^"]+\.js)"', page.text).group(1)
    responses = [page, c.get("/" + asset), c.get("/healthz"), c.get("/staff/"), c.get("/lab/"),
                 c.get("/auth/login?next=/staff/"), c.get("/no/such/route"), c.get("/config"),
                 c.post("/gradio_api/queue/join", json={"fn_index": 999, "data": [], "session_hash": "x"})]
    for r in responses:
        _assert_security_headers(r)
    # pages with consultation data are not cached; inline scripts run only with this response's nonce
    assert page.headers["cache-control"] == "no-store"
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"]).group(1)
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts and all(f'nonce="{nonce}"' in s for s in scripts)


def test_the_app_cannot_be_framed(ui_app, new_page):
    """A real browser refuses to render the app inside another site's frame."""
    page = new_page()
    page.set_content(f'<iframe id="f" src="{ui_app.base}/" width="600" height="400"></iframe>')
    page.wait_for_timeout(3000)
    frame = page.frame_locator("#f")
    assert frame.locator("#page-title").count() == 0
    assert page.frames[-1].url in ("about:blank", "chrome-error://chromewebdata/", "") or \
        page.frames[-1].locator("#page-title").count() == 0
