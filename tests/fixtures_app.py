"""One real app server (subprocess: real service, real Redis, real model) and one Chromium per test run.

The app gets: the test Redis (``redis_url``), an isolated data dir, two users (staff + researcher)
through ``CHATDOC_UI_USERS``, an adapters dir holding a random LoRA ``rand-a``, a small
``max_new_tokens`` and template wording for patient turns so the run stays quick
(``CHATDOC_UI_TEST_MODEL_WORDING=true`` to word them with the model). Every browser request is recorded;
when the browser closes at the end of the run, none may have left 127.0.0.1 (whatever order tests ran in).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chatdoc.config import REPO_ROOT

SHOTS = REPO_ROOT / "artifacts" / "screenshots"
STAFF = ("sam.staff", "staff-pass-123")
RESEARCHER = ("rita.lab", "lab-pass-456")
REQUESTS: list[str] = []  # every URL any test page requested (checked when the browser closes)


def external_requests(urls: Iterable[str]) -> list[str]:
    """The URLs that leave 127.0.0.1: the UI must work fully offline (no CDN, fonts, telemetry)."""
    return sorted({u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                   and urlsplit(u).hostname != "127.0.0.1"})


@pytest.fixture(scope="session")
def ui_adapters_dir(tmp_path_factory, backend):
    from chatdoc.tools.lora import create_random_adapter

    d = tmp_path_factory.mktemp("ui-adapters")
    create_random_adapter(backend.resolved, d / "rand-a")
    return d


def app_env(redis_url: str, data_dir: Path, *extra_users: tuple[str, str, str, int]) -> dict[str, str]:
    """Environment of a test app: the test Redis, its own data dir, the staff and researcher logins (bcrypt cost 4)
    plus ``extra_users`` given as (name, password, role, bcrypt cost)."""
    from chatdoc.ui.auth import hash_password

    users = [(*STAFF, "staff", 4), (*RESEARCHER, "researcher", 4), *extra_users]
    return {
        "CHATDOC_REDIS_URL": redis_url,
        "CHATDOC_DATA_DIR": str(data_dir),
        "CHATDOC_UI_USERS": json.dumps([{"username": u, "password_hash": hash_password(p, rounds=r), "role": role}
                                        for u, p, role, r in users]),
    }


@pytest.fixture(scope="session")
def ui_app(tmp_path_factory, redis_url, ui_adapters_dir):
    import redis

    from chatdoc.tools.harness import AppProcess

    redis.Redis.from_url(redis_url).flushdb()
    data = tmp_path_factory.mktemp("ui-data")
    env = {
        **app_env(redis_url, data),
        "CHATDOC_ADAPTERS_DIR": str(ui_adapters_dir),
        "CHATDOC_GENERATION_MAX_NEW_TOKENS": os.environ.get("CHATDOC_UI_TEST_MAX_NEW_TOKENS", "24"),
        "CHATDOC_UI_CONCURRENCY_LIMIT": "2",
        # Patient turns use the question templates (fast, deterministic on a busy 2-core box); the model
        # still runs for the lab comparison (the service forces model wording there) and in chatdoc.tools.bench.ui.
        "CHATDOC_DIALOGUE_USE_MODEL_WORDING": os.environ.get("CHATDOC_UI_TEST_MODEL_WORDING", "false"),
        "CHATDOC_DIALOGUE_WORDING_MAX_NEW_TOKENS": "12",
        "CHATDOC_DIALOGUE_WORDING_ATTEMPTS": "1",
    }
    app = AppProcess(env=env, log_path=REPO_ROOT / "artifacts" / "ui-test-app.log")
    app.start()
    app.data_dir = data
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from chatdoc.tools.harness import launch_browser

    with sync_playwright() as p:
        b = launch_browser(p)
        try:
            yield b
        finally:
            b.close()
    # After every test that used a page: the offline check over all of them, independent of test order.
    external = external_requests(REQUESTS)
    assert not external, f"UI test pages requested URLs outside 127.0.0.1: {external}"


@pytest.fixture
def new_page(browser):
    """Factory: a page in a fresh context (own cookies), recording requests (``page.requests`` and the
    run-wide ``REQUESTS``) and dialogs."""
    contexts = []
    dialogs: list[str] = []

    def make(width: int = 1100, height: int = 900):
        ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        own: list[str] = []
        ctx.on("request", lambda r: (REQUESTS.append(r.url), own.append(r.url)))
        contexts.append(ctx)
        page = ctx.new_page()
        page.requests = own
        page.set_default_timeout(60_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs
        return page

    yield make
    for c in contexts:
        c.close()


def shot(page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
