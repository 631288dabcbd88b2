"""Start a local OpenAI-compatible llama.cpp server on the built-in GGUF with the project's adapters.

Two engines, both serving ``/v1/completions`` with streaming:

* ``llama-server`` (llama.cpp's own server binary; ``CHATDOC_LLAMA_SERVER_BIN`` or on ``PATH``): every adapter is
  loaded once next to the base (``--lora <gguf> --lora-init-without-apply``) and chosen per request
  (``"lora": [{"id": i, "scale": 1}]``, listed by ``GET /lora-adapters``): ``model.remote_flavour: llamacpp``.
* ``llama-cpp-python`` (``python -m llama_cpp.server``, installed with llama-cpp-python): it has no per-request
  LoRA and no ``/lora-adapters``; ``--lora_path`` applies one adapter to the whole model. With a ``--config_file``
  listing the base and one alias per adapter (the same GGUF + ``lora_path``), the adapter is chosen by
  ``"model": name`` the way vLLM does it (``model.remote_flavour: vllm``), at the cost of a model reload when the
  requested alias changes.

``python -m chatdoc.llm.serve --help`` (``scripts/serve_llamacpp.sh``) runs one in the foreground; the tests and
``chatdoc bench llm`` use :class:`ServerProcess`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from chatdoc.config import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def base_gguf(settings: Settings) -> Path:
    from chatdoc.llm.llamacpp import resolve_gguf

    return resolve_gguf(settings.model.base, settings.path(settings.model.cache_dir)).path


def adapter_gguf(settings: Settings, name: str) -> Path:
    """The GGUF LoRA of a local PEFT adapter (converted once, cached under <model.cache_dir>/gguf-lora)."""
    from chatdoc.llm import adapters as adapter_files
    from chatdoc.llm.gguf_lora import ensure_gguf_lora, read_base_info

    d = adapter_files.adapter_dir(settings.path(settings.adapters.dir), name)
    gguf = base_gguf(settings)
    return ensure_gguf_lora(d, name, settings.path(settings.model.cache_dir), lambda: read_base_info(gguf))


def llama_server_binary() -> str | None:
    return os.environ.get("CHATDOC_LLAMA_SERVER_BIN") or shutil.which("llama-server")


def llama_server_command(binary: str, gguf: Path, port: int, threads: int, n_ctx: int, adapters: dict[str, Path],
                         host: str = "127.0.0.1", parallel: int = 1) -> list[str]:
    cmd = [binary, "-m", str(gguf), "--host", host, "--port", str(port), "-t", str(threads), "-tb", str(threads),
           "-c", str(n_ctx * parallel), "-np", str(parallel), "--no-webui", "--swa-full"]
    for path in adapters.values():
        cmd += ["--lora", str(path)]
    if adapters:
        cmd.append("--lora-init-without-apply")  # loaded, not applied; chatdoc names every adapter's scale per request
    return cmd


def llama_cpp_python_command(gguf: Path, port: int, threads: int, n_ctx: int, adapters: dict[str, Path],
                             base_alias: str, config_dir: Path, host: str = "127.0.0.1") -> list[str]:
    """``python -m llama_cpp.server --config_file``: the base and one alias per adapter (GGUF + lora_path)."""
    common = {"model": str(gguf), "n_ctx": n_ctx, "n_threads": threads, "n_threads_batch": threads,
              "verbose": False}
    models = [{**common, "model_alias": base_alias}]
    models += [{**common, "model_alias": name, "lora_path": str(path)} for name, path in adapters.items()]
    cfg = Path(config_dir) / "llama-cpp-python-server.json"
    # interrupt_requests false: a new request must not cut a running one (several patients at once)
    cfg.write_text(json.dumps({"host": host, "port": port, "interrupt_requests": False, "models": models}, indent=1))
    return [sys.executable, "-m", "llama_cpp.server", "--config_file", str(cfg)]


class ServerProcess:
    """A server subprocess on loopback: ``start()`` waits until ``GET /v1/models`` answers."""

    def __init__(self, settings: Settings, engine: str = "llama-cpp-python", adapters: tuple[str, ...] = (),
                 port: int | None = None, threads: int | None = None, log_path: Path | None = None,
                 host: str = "127.0.0.1"):
        self.settings = settings
        self.engine = engine
        self.host = host
        self.port = port or free_port(host)
        self.threads = threads or settings.model.threads or os.cpu_count() or 1
        self.adapters = {name: adapter_gguf(settings, name) for name in adapters}
        self._tmp = tempfile.TemporaryDirectory(prefix="chatdoc-serve-")
        self.log_path = Path(log_path) if log_path else Path(self._tmp.name) / "server.log"
        self.base_alias = settings.model.base
        gguf = base_gguf(settings)
        n_ctx = settings.model.max_context_tokens
        if engine == "llama-server":
            binary = llama_server_binary()
            if not binary:
                raise FileNotFoundError("llama-server not found: set CHATDOC_LLAMA_SERVER_BIN or put it on PATH")
            self.cmd = llama_server_command(binary, gguf, self.port, self.threads, n_ctx, self.adapters, host)
            self.flavour = "llamacpp"
        elif engine == "llama-cpp-python":
            self.cmd = llama_cpp_python_command(gguf, self.port, self.threads, n_ctx, self.adapters, self.base_alias,
                                                Path(self._tmp.name), host)
            self.flavour = "vllm"  # adapters are models chosen by name
        else:
            raise ValueError(f"unknown engine {engine!r}")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings_overrides(self) -> dict:
        """The ``model`` settings that point the openai backend at this server."""
        return {"backend": "openai", "remote_url": self.url, "remote_flavour": self.flavour,
                "remote_model": self.base_alias}

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.engine} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise TimeoutError(f"{self.engine} did not answer within {timeout_s:.0f} s: {self.log_tail()}")
        # llama-cpp-python loads the model on the first request: a one-token completion loads it now
        body = {"prompt": "Hello", "max_tokens": 1, "temperature": 0, "model": self.base_alias}
        httpx.post(self.url + "/v1/completions", json=body, timeout=max(1.0, deadline - time.monotonic()))
        return self

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case it was stopped
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    from chatdoc.config import get_settings

    p = argparse.ArgumentParser(prog="python -m chatdoc.llm.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["auto", "llama-server", "llama-cpp-python"], default="auto",
                   help="auto = llama-server when found (per-request LoRA), else llama-cpp-python")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--parallel", type=int, default=1, help="llama-server: concurrent slots (-np)")
    p.add_argument("--adapter", action="append", default=None,
                   help="adapter name in adapters/ (repeatable; default: adapters.active)")
    p.add_argument("--print", action="store_true", help="print the command and the chatdoc settings, do not run")
    a = p.parse_args(argv)
    s = get_settings()
    names = a.adapter if a.adapter is not None else ([s.adapters.active] if s.adapters.active else [])
    engine = a.engine if a.engine != "auto" else ("llama-server" if llama_server_binary() else "llama-cpp-python")
    threads = a.threads or s.model.threads or os.cpu_count() or 1
    adapters = {n: adapter_gguf(s, n) for n in names}
    gguf = base_gguf(s)
    n_ctx = s.model.max_context_tokens
    if engine == "llama-server":
        binary = llama_server_binary()
        if not binary:
            p.error("llama-server not found: set CHATDOC_LLAMA_SERVER_BIN or put it on PATH")
        cmd, flavour = llama_server_command(binary, gguf, a.port, threads, n_ctx, adapters, a.host, a.parallel), "llamacpp"
    else:
        cfg_dir = s.path(s.model.cache_dir) / "serve"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        cmd = llama_cpp_python_command(gguf, a.port, threads, n_ctx, adapters, s.model.base, cfg_dir, a.host)
        flavour = "vllm"
    host = "127.0.0.1" if a.host in ("0.0.0.0", "::") else a.host
    print(f"# chatdoc settings for this server:\n#   CHATDOC_MODEL_BACKEND=openai CHATDOC_MODEL_REMOTE_URL=http://{host}:{a.port} "
          f"CHATDOC_MODEL_REMOTE_FLAVOUR={flavour} CHATDOC_MODEL_REMOTE_MODEL={s.model.base}", file=sys.stderr)
    print(" ".join(cmd), file=sys.stderr)
    if a.print:
        return 0
    os.execvp(cmd[0], cmd)
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
