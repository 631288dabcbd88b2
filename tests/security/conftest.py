"""Security tests attack the real running app (tests/fixtures_app.py ``ui_app``: real model, Redis, Presidio)
and, for log-in attacks, a second app without the model (``auth_app``): throttling counters and short
session lifetimes must not disturb the UI tests' log-ins."""

from __future__ import annotations

import json

import httpx
import pytest

from chatdoc.config import REPO_ROOT

SLOW_USER = ("sally.slow", "slow-pass-789")  # a cost-12 bcrypt hash, like a real deployment's


def _auth_env(redis_url, data):
    from tests.fixtures_app import app_env

    return {
        **app_env(redis_url, data, (*SLOW_USER, "staff", 12)),
        "CHATDOC_REDIS_KEY_PREFIX": "authapp",  # its throttling counters must not lock the UI tests' users
        "CHATDOC_SECURITY_TRUST_PROXY_HEADERS": "true",  # tests play several client addresses
        "CHATDOC_SECURITY_ALLOWED_HOSTS": json.dumps(["127.0.0.1", "clinic.example.org"]),
        "CHATDOC_SECURITY_ALLOWED_ORIGINS": json.dumps(["https://portal.example.org"]),
        "CHATDOC_SECURITY_LOGIN_MAX_FAILURES": "5",
        "CHATDOC_SECURITY_LOGIN_BACKOFF_SECONDS": "30",
        "CHATDOC_SECURITY_SESSION_IDLE_MINUTES": "0.25",  # 15 s (long enough for a loaded CI box)
        "CHATDOC_DIALOGUE_USE_MODEL_WORDING": "false",
    }


def _start(tmp_path_factory, redis_url, name):
    from chatdoc.tools.harness import AppProcess

    data = tmp_path_factory.mktemp(name)
    app = AppProcess(env=_auth_env(redis_url, data), log_path=REPO_ROOT / "artifacts" / f"security-{name}.log",
                     warm=False)
    app.start()
    app.data_dir = data
    return app


@pytest.fixture(scope="session")
def auth_app(tmp_path_factory, redis_url):
    """An app without the model, for log-in attacks."""
    app = _start(tmp_path_factory, redis_url, "auth-app")
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def auth_app_b(tmp_path_factory, redis_url, auth_app):
    """A second replica of ``auth_app``: same Redis, same settings, its own process and data dir."""
    app = _start(tmp_path_factory, redis_url, "auth-app-b")
    try:
        yield app
    finally:
        app.stop()


def login_client(base: str, user: tuple[str, str], view: str = "/staff/", **headers) -> httpx.Client:
    """An HTTP client holding a logged-in session cookie."""
    c = httpx.Client(base_url=base, timeout=60, headers=headers)
    r = c.post("/auth/login", data={"username": user[0], "password": user[1], "next": view})
    assert r.status_code == 303, (r.status_code, r.text[:200])
    return c


def csrf_token(client: httpx.Client, view: str = "/staff/") -> str:
    """The log-out form's CSRF token, as the view's on_load handler renders it for this session."""
    import re

    from tests.security.gradio_raw import GradioRaw

    g = GradioRaw(str(client.base_url), view.rstrip("/"), client=client)
    text = g.outputs_text(g.call(0, ["any", "any"] if view == "/staff/" else []))
    m = re.search(r'name=\\"csrf\\" value=\\"([^\\"]+)\\"', text)
    assert m, text[:500]
    return m.group(1)
