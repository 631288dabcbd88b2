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


def _nginx(apps, prefix):
    """Debian nginx on loopback in front of ``apps``, from configs/nginx/chatdoc.conf: (process, base URL)."""
    import shutil
    import subprocess
    import time
    from urllib.parse import urlsplit

    from chatdoc.config import REPO_ROOT
    from chatdoc.tools.harness import free_port

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / d).mkdir()
    port = free_port()
    servers = " ".join(f"server {urlsplit(a.base).netloc};" for a in apps)
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
    return proc, base


@pytest.fixture(scope="module")
def proxy(auth_app, auth_app_b, tmp_path_factory):
    """Debian nginx on loopback in front of both replicas."""
    proc, base = _nginx((auth_app, auth_app_b), tmp_path_factory.mktemp("nginx"))
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


# ------------------------------------------------------------------------------------------ replicas + one engine
SHIPPED = "consult-gemma3-270m-v2"  # the default adapter (adapters.active)


@pytest.fixture(scope="module")
def engine():
    """ONE llama.cpp server (llama-cpp-python's, chatdoc.llm.serve) on loopback: the built-in GGUF + the shipped
    adapter, for every replica."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("sse_starlette")
    from chatdoc.config import load_settings
    from chatdoc.llm.serve import ServerProcess

    srv = ServerProcess(load_settings(model={"threads": 1}), adapters=(SHIPPED,)).start()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def engine_replicas(engine, tmp_path_factory, redis_url):
    """Two app processes with ``model.backend: openai`` on the one engine, model wording on, one Redis, behind nginx.
    Started side by side, each warming its turn pipeline (redaction, extraction) before it reports ready."""
    import threading

    from chatdoc.config import REPO_ROOT
    from chatdoc.tools.harness import AppProcess
    from tests.security.conftest import _auth_env

    env_model = {f"CHATDOC_MODEL_{k.upper()}": v for k, v in engine.settings_overrides().items()}
    apps = []
    for name in ("engine-a", "engine-b"):
        data = tmp_path_factory.mktemp(name)
        env = {**_auth_env(redis_url, data), **env_model, "CHATDOC_REDIS_KEY_PREFIX": "scaleout",
               "CHATDOC_PRIVACY_KEY": "ab" * 32,  # the replicas' shared pseudonym key
               "CHATDOC_DIALOGUE_USE_MODEL_WORDING": "true", "CHATDOC_DIALOGUE_WORDING_ATTEMPTS": "1",
               "CHATDOC_DIALOGUE_WORDING_MAX_NEW_TOKENS": "24", "CHATDOC_MODEL_REMOTE_TIMEOUT_S": "60",
               # no per-turn time budget: this test is about which engine the model parts go through
               "CHATDOC_DIALOGUE_MODEL_BUDGET_S": "60"}
        apps.append(AppProcess(env=env, log_path=REPO_ROOT / "artifacts" / f"security-{name}.log", warm=True))
    errors = []

    def start(app):
        try:
            app.start()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc = None
    try:
        assert not errors, errors
        proc, base = _nginx(apps, tmp_path_factory.mktemp("nginx-engine"))
        yield apps[0], apps[1], base
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        for a in apps:
            a.stop()


def _completions(engine) -> int:
    """How many completions the engine has answered (its access log)."""
    return engine.log_path.read_text(errors="replace").count("POST /v1/completions")


def test_replicas_share_one_engine_and_a_consultation_moves_between_them(engine, engine_replicas, redis_url,
                                                                         monkeypatch):
    a_app, b_app, proxied = engine_replicas
    a = GradioRaw(a_app.base)
    a.call(a.fn_index("on_load"), [])
    sid = re.search(r'resume-code\\">([A-Za-z0-9_-]{22,64})<', a.outputs_text(a.call(a.fn_index("on_consent"), [None]))).group(1)
    before = _completions(engine)
    assert a.call(a.fn_index("on_send"), ["I have had a sore throat for two days", None])["messages"][-1]["success"]
    after_a = _completions(engine)
    assert after_a > before, "replica A did not word its question through the engine"
    # the patient comes back on the other replica and carries on
    b = GradioRaw(b_app.base)
    b.call(b.fn_index("on_load"), [])
    resumed = b.outputs_text(b.call(b.fn_index("on_resume"), [sid, None]))
    assert "sore throat for two days" in resumed and "resume-ok" in resumed
    assert b.call(b.fn_index("on_send"), ["No fever, just pain when swallowing", None])["messages"][-1]["success"]
    assert _completions(engine) > after_a, "replica B did not word its question through the engine"
    # ... and once more through the proxy (whichever replica it picks)
    p = GradioRaw(proxied)
    p.call(p.fn_index("on_load"), [])
    assert "resume-ok" in p.outputs_text(p.call(p.fn_index("on_resume"), [sid, None]))
    assert p.call(p.fn_index("on_send"), ["It started on Monday", None])["messages"][-1]["success"]
    # staff (logged in through the proxy) see it
    staff = GradioRaw(proxied, "/staff", client=login_client(proxied, STAFF, **{"X-Forwarded-For": "192.0.2.60"}))
    assert sid[:10] in staff.outputs_text(staff.call(0, ["any", "any"]))
    # the record in the shared Redis: three patient turns, each answered with a question; model wording was asked
    # for every one (a wording that failed the acceptance check is the template, never an engine failure)
    from chatdoc.config import get_settings
    from chatdoc.memory import reset_connection
    from chatdoc.service import build_service

    monkeypatch.setenv("CHATDOC_REDIS_URL", redis_url)
    monkeypatch.setenv("CHATDOC_REDIS_KEY_PREFIX", "scaleout")
    get_settings.cache_clear()
    reset_connection()
    try:
        view = build_service().get_state(sid)
    finally:
        reset_connection()
        monkeypatch.undo()
        get_settings.cache_clear()
    patient = [m["text"] for m in view.transcript if m["role"] == "patient"]
    assert len(patient) == 3 and "Monday" in patient[-1], view.transcript
    assert len(view.question_log) >= 3 and {q["source"] for q in view.question_log} <= {"model", "template"}
    for name in ("security-engine-a.log", "security-engine-b.log"):
        from chatdoc.config import REPO_ROOT

        assert "engine_unavailable" not in (REPO_ROOT / "artifacts" / name).read_text(errors="replace")
