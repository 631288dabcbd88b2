"""Security tests attack the real running app (tests/fixtures_app.py ``ui_app``: real model, Redis, Presidio)
and, for log-in attacks, a second app without the model (``auth_app``): throttling counters and short
session lifetimes must not disturb the UI tests' log-ins."""

from __future__ import annotations

import json

import httpx
import pytest

from chatdoc.config import REPO_ROOT

SLOW_USER = ("sally.slow", "slow-pass-789")  # a cost-12 bcrypt hash, like a real deployment's


@pytest.fixture(scope="session")
def auth_app(tmp_path_factory, redis_url):
    from chatdoc.tools.harness import AppProcess
    from tests.fixtures_app import app_env

    data = tmp_path_factory.mktemp("auth-app-data")
    env = {
        **app_env(redis_url, data, (*SLOW_USER, "staff", 12)),
        "CHATDOC_SECURITY_TRUST_PROXY_HEADERS": "true",  # tests play several client addresses
        "CHATDOC_SECURITY_ALLOWED_HOSTS": json.dumps(["127.0.0.1", "clinic.example.org"]),
        "CHATDOC_SECURITY_ALLOWED_ORIGINS": json.dumps(["https://portal.example.org"]),
        "CHATDOC_SECURITY_LOGIN_MAX_FAILURES": "5",
        "CHATDOC_SECURITY_LOGIN_BACKOFF_SECONDS": "30",
        "CHATDOC_SECURITY_SESSION_IDLE_MINUTES": "0.25",  # 15 s (long enough for a loaded CI box)
    }
    app = AppProcess(env=env, log_path=REPO_ROOT / "artifacts" / "security-auth-app.log", warm=False)
    app.start()
    app.data_dir = data
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
