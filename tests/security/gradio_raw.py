"""A raw HTTP client for a mounted Gradio app: what an attacker scripts, no gradio_client, no browser.

``GradioRaw(base, prefix)`` reads ``{prefix}/config`` and calls events by ``fn_index`` through the queue
(``/gradio_api/queue/join`` + the SSE stream ``/gradio_api/queue/data``), with any payload.
"""

from __future__ import annotations

import json
import uuid

import httpx


class GradioRaw:
    def __init__(self, base: str, prefix: str = "", client: httpx.Client | None = None):
        self.base = base.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.http = client or httpx.Client(timeout=60)
        self.session_hash = uuid.uuid4().hex[:11]
        self._config: dict | None = None

    def url(self, path: str) -> str:
        return f"{self.base}{self.prefix}{path}"

    @property
    def config(self) -> dict:
        if self._config is None:
            r = self.http.get(self.url("/config"))
            r.raise_for_status()
            self._config = r.json()
        return self._config

    def fn_index(self, api_name: str) -> int:
        for i, d in enumerate(self.config["dependencies"]):
            if d.get("api_name") == api_name:
                return i
        raise KeyError(api_name)

    def call(self, fn_index: int, data: list, timeout: float = 120.0) -> dict:
        """Join the queue and read the stream; returns {"status": http status of join, "messages": [...]}."""
        r = self.http.post(
            self.url("/gradio_api/queue/join"),
            json={"data": data, "fn_index": fn_index, "session_hash": self.session_hash, "event_data": None,
                  "trigger_id": None},
        )
        out: dict = {"status": r.status_code, "join": r.text, "messages": []}
        if r.status_code != 200:
            return out
        with self.http.stream("GET", self.url("/gradio_api/queue/data"), params={"session_hash": self.session_hash},
                              timeout=timeout) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                out["messages"].append(msg)
                if msg.get("msg") in ("process_completed", "close_stream", "unexpected_error"):
                    break
        return out

    def outputs_text(self, result: dict) -> str:
        return json.dumps(result.get("messages", []))
