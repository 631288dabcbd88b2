"""Run the real app in a subprocess and drive it with headless Chromium (tests and the UI bench).

Nothing here is imported by the app itself. Playwright is imported lazily (test/bench extra).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from chatdoc.config import REPO_ROOT

CHROMIUM = os.environ.get("CHATDOC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """``python -m chatdoc.cli serve`` on a free port with the given extra environment."""

    def __init__(self, env: dict[str, str] | None = None, log_path: Path | None = None, port: int | None = None,
                 warm: bool = True):
        self.port = port or free_port()
        self.warm = warm  # False: --no-warm, start() returns as soon as /healthz answers
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        self.env.setdefault("HF_HUB_OFFLINE", "1")
        self.env.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, ready_timeout: float = 120.0, model_timeout: float = 300.0) -> AppProcess:
        out = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")  # noqa: SIM115
            out = self._log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatdoc.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            + ([] if self.warm else ["--no-warm"]),
            cwd=str(REPO_ROOT),
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        t0 = time.monotonic()
        state = None
        while time.monotonic() - t0 < ready_timeout + model_timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}; log: {self.log_path}")
            state = self.health()
            if state is not None:
                if state in ("ready", "failed") or not self.warm:
                    break
            elif time.monotonic() - t0 > ready_timeout:
                break
            time.sleep(0.5)
        if state is None:
            self.stop()
            raise RuntimeError(f"the app did not answer on {self.base}; log: {self.log_path}")
        return self

    def health(self) -> str | None:
        """The model's state from /healthz (also when storage is down: 503 with the same body)."""
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                return json.loads(r.read()).get("model")
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read()).get("model")
            except ValueError:
                return None
        except OSError:
            return None

    def rss_bytes(self) -> int:
        """Resident memory of the app process (excluding a child redis-server)."""
        if self.proc is None:
            return 0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------- patient page helpers (selectors)

BOT_COUNT_JS = "() => document.querySelectorAll('#chat [data-testid=bot]').length"


def open_patient(page, base: str, query: str = "") -> None:
    page.goto(f"{base}/{query}")
    page.wait_for_selector("#consent-notice .cd-consent, #resume-ok, #patient-error", timeout=60_000)


def consent(page) -> None:
    page.click("#consent-btn")
    page.wait_for_selector("#chat", state="visible", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelectorAll('#chat [data-testid=bot]').length > 0 || "
        "document.querySelector('#patient-error')",
        timeout=180_000,
    )


def send_timed(page, text: str, timeout_ms: int = 240_000) -> dict:
    """Type ``text``, press Send; returns ms to first streamed token and to the full reply (page clock)."""
    n = page.evaluate(BOT_COUNT_JS)
    page.fill("#msg-input textarea", text)
    t0 = page.evaluate(
        "() => { document.querySelectorAll('#patient-error').forEach(e => e.remove());"
        " document.querySelector('#send-btn').click(); return performance.now(); }"
    )
    first = page.wait_for_function(
        """(n) => {
            const bots = document.querySelectorAll('#chat [data-testid=bot]');
            if (document.querySelector('#patient-error')) return performance.now();
            if (bots.length <= n) return false;
            const t = bots[bots.length - 1].innerText.trim();
            return t.length > 0 ? performance.now() : false;
        }""",
        arg=n,
        polling="raf",
        timeout=timeout_ms,
    ).json_value()
    done = page.wait_for_function(
        """(n) => {
            const b = document.querySelector('#send-btn');
            const bots = document.querySelectorAll('#chat [data-testid=bot]');
            if (document.querySelector('#patient-error')) return performance.now();
            return (bots.length > n && b && !b.disabled) ? performance.now() : false;
        }""",
        arg=n,
        polling="raf",
        timeout=timeout_ms,
    ).json_value()
    return {"first_token_ms": first - t0, "full_reply_ms": done - t0}


def login(page, base: str, view: str, username: str, password: str, expect: str) -> None:
    """Open ``/<view>/`` (redirected to chatdoc's log-in form), log in, wait for ``expect``."""
    page.goto(f"{base}/{view}/")
    page.wait_for_selector("#login-form input[type=password]", timeout=60_000)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-btn")
    page.wait_for_selector(expect, timeout=60_000)
