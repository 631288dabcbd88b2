"""OpenAI-compatible remote backend (``model.backend: openai``): a llama.cpp server or vLLM serves the model.

* **Requests**: ``POST /v1/completions`` with ``stream: true`` (server-sent events) and chatdoc's own prompt format
  (:mod:`chatdoc.llm.prompt`) as the raw prompt, so the server runs exactly the prompt the in-process backends run;
  max_tokens, temperature (0 = greedy), top_p, top_k, seed, the repetition penalty, stop sequences.
* **Failures**: connect errors, timeouts and 5xx answers are retried ``model.remote_retries`` times with exponential
  back-off, but never once text has been streamed (the caller has shown it). What cannot be retried raises
  :class:`EngineUnavailable`, which carries one message for the patient; the consultation itself lives in Redis
  and resumes when the engine is back.
* **Adapters**, the way each engine does it (``model.remote_flavour``):

  - ``llamacpp`` (llama.cpp's ``llama-server --lora a.gguf --lora b.gguf --lora-init-without-apply``): listed with
    ``GET /lora-adapters`` (id, path, scale); chosen per request with ``"lora": [{"id": i, "scale": 1.0}]`` (the
    adapters not named run at scale 0, so ``[]`` is the base model). An adapter is known by its file name:
    ``<name>-<sha>.gguf`` as :mod:`chatdoc.llm.gguf_lora` writes it, or ``<name>.gguf``;
  - ``vllm`` (``vllm serve BASE --enable-lora --lora-modules name=path``): LoRA modules are listed by
    ``GET /v1/models`` next to the base and chosen with ``"model": name``; an adapter of the adapters directory
    that the server does not serve yet is loaded with ``POST /v1/load_lora_adapter`` (the server must see the
    path and run with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). llama-cpp-python's own server with several
    model aliases in a ``--config_file`` (one with ``lora_path``) behaves the same way, reloading on a switch.
* **Tokens**: ``count_tokens`` asks the server (llama.cpp and vLLM ``POST /tokenize``, llama-cpp-python
  ``POST /extras/tokenize``); without one, the base GGUF's vocabulary loaded locally (llama-cpp-python,
  ``vocab_only``), else an estimate of one token per 3 bytes (over-counting, so prompts still fit).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from chatdoc.config import Settings
from chatdoc.llm import adapters as adapter_files
from chatdoc.llm.backend import (  # noqa: F401 - EngineUnavailable, PATIENT_MESSAGE: re-exported
    PATIENT_MESSAGE,
    AdapterHost,
    EngineUnavailable,
    GenerationRequest,
    GenerationResult,
    StreamHandle,
    _StopBuffer,
)
from chatdoc.llm.source import BUILTIN_DEFAULT, ResolvedModel
from chatdoc.log import logger

BACKOFF_S = 0.25  # first retry after 0.25 s, then 0.5 s, 1 s, ... (capped at MAX_BACKOFF_S)
MAX_BACKOFF_S = 2.0
_GGUF_NAME = re.compile(r"^(?P<name>.+?)(?:-[0-9a-f]{8,64})?$")


class _Retry(Exception):
    """One failed try that may be tried again (nothing streamed yet)."""


class RemoteBackend(AdapterHost):
    """A model served over HTTP by an OpenAI-compatible engine."""

    kind = "openai"

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None):
        m = settings.model
        if not m.remote_url:
            raise EngineUnavailable("model.backend is 'openai' but model.remote_url is not set", retryable=False)
        self.settings = settings
        self.flavour = m.remote_flavour
        self.url = m.remote_url.rstrip("/").removesuffix("/v1")
        self._lock = threading.RLock()  # adapter bookkeeping only: generations run concurrently on the server
        self._active: str | None = None
        self._served: dict[str, dict[str, Any]] | None = None  # name -> the server's entry (None = not asked yet)
        self._base_name: str | None = m.remote_model
        self._tokenize_route: str | None = None  # the server's tokenize endpoint, once found ("" = none)
        self._local_vocab = None
        self.adapters_root = settings.path(settings.adapters.dir)
        self.device = f"remote ({self.flavour})"
        self.use_chat_template = False  # chatdoc's own prompt format, sent as the raw prompt
        self.load_times: dict[str, float] = {}
        self.last_stats: dict[str, Any] = {}
        headers = {"Authorization": f"Bearer {m.remote_api_key}"} if m.remote_api_key else {}
        timeout = httpx.Timeout(m.remote_timeout_s, connect=min(m.remote_timeout_s, 3.0))
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self.resolved = _resolve_remote(settings, self.url)
        self.quantization = {"in_effect": "server", "layer_counts": {}, "parameters": 0}
        self._activate_configured(settings.adapters.active)  # asks the server; a down engine is not fatal here

    def _activate_configured(self, name: str | None) -> None:
        try:
            super()._activate_configured(name)
        except EngineUnavailable as e:  # the engine may start after the app: use the adapter once it is there
            self._active = name
            self.adapter_error = f"engine not reachable at start-up ({e}); {name!r} is used once it is"
            logger.warning("{}", self.adapter_error)

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        """One request with the retry policy (connect errors, timeouts, 5xx); EngineUnavailable when spent."""
        return self._with_retries(lambda: self._once(method, path, **kw), f"{method} {path}")

    def _once(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = self.client.request(method, path, **kw)
        except (httpx.TransportError, httpx.TimeoutException) as e:
            raise _Retry(f"{type(e).__name__}: {e}") from None
        if r.status_code >= 500:
            raise _Retry(f"HTTP {r.status_code}: {r.text[:200]}")
        return r

    def _with_retries(self, attempt, what: str):
        tries = self.settings.model.remote_retries + 1
        last = ""
        for i in range(tries):
            if i:
                time.sleep(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (i - 1)))
            try:
                return attempt()
            except _Retry as e:
                last = str(e)
                logger.warning("model engine {}: {} (try {} of {})", what, last, i + 1, tries)
        raise EngineUnavailable(f"model engine at {self.url} failed {what} {tries} times; last: {last}")

    def _json(self, method: str, path: str, **kw) -> Any:
        r = self._request(method, path, **kw)
        if r.status_code >= 400:
            raise httpx.HTTPStatusError(f"{method} {path}: HTTP {r.status_code}: {r.text[:300]}", request=r.request,
                                        response=r)
        return r.json()

    # ---------------------------------------------------------------- info
    def info(self) -> dict[str, Any]:
        out = {
            **self._common_info(),
            "memory_footprint_bytes": 0,  # held by the server
            "engine": {"name": f"openai:{self.flavour}", "url": self.url, "base_model_on_server": self._base_name,
                       "timeout_s": self.settings.model.remote_timeout_s, "retries": self.settings.model.remote_retries},
            "loaded_adapters": sorted(self._served or {}),
            "prompt_format": "chatdoc",
            "max_context_tokens": self.settings.model.max_context_tokens,
            "load_times": self.load_times,
        }
        try:
            out["engine"]["models"] = [m.get("id") for m in self._models()]
            out["engine"]["reachable"] = True
        except (EngineUnavailable, httpx.HTTPError, ValueError) as e:
            out["engine"]["reachable"] = False
            out["engine"]["error"] = str(e)
        return out

    def _models(self) -> list[dict[str, Any]]:
        data = self._json("GET", "/v1/models").get("data") or []
        if self._base_name is None and data:
            bases = [d for d in data if not d.get("parent")] or data
            self._base_name = bases[0]["id"]
        return data

    def base_name(self) -> str:
        if self._base_name is None:
            self._models()
        return self._base_name or self.settings.model.base

    # ---------------------------------------------------------------- tokens
    def count_tokens(self, text: str) -> int:
        if self._tokenize_route != "":
            try:
                return self._server_count(text)
            except (EngineUnavailable, httpx.HTTPError, ValueError, KeyError) as e:
                logger.debug("server tokenize failed ({}); counting locally", e)
        return self._local_count(text)

    def _server_count(self, text: str) -> int:
        routes = [self._tokenize_route] if self._tokenize_route else ["/tokenize", "/extras/tokenize"]
        for route in routes:
            if route == "/tokenize":
                body = ({"model": self.base_name(), "prompt": text, "add_special_tokens": True} if self.flavour == "vllm"
                        else {"content": text, "add_special": True})
            else:
                body = {"input": text, "model": self._base_name}
            r = self._request("POST", route, json=body)
            if r.status_code in (404, 405):
                continue
            if r.status_code >= 400:
                raise ValueError(f"POST {route}: HTTP {r.status_code}")
            self._tokenize_route = route
            return len(r.json()["tokens"])
        self._tokenize_route = ""  # the server has none: count locally from now on
        raise ValueError("the server has no tokenize endpoint")

    def _local_count(self, text: str) -> int:
        if self._local_vocab is None:
            self._local_vocab = False
            gguf = self.resolved.path if str(self.resolved.path).endswith(".gguf") else None
            if gguf is not None and Path(gguf).is_file():
                try:
                    import llama_cpp

                    self._local_vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
                except Exception as e:  # noqa: BLE001 - not installed or not loadable: estimate
                    logger.debug("no local vocabulary ({}); estimating token counts", e)
        if self._local_vocab:
            return len(self._local_vocab.tokenize(text.encode("utf-8"), add_bos=True, special=False))
        return 1 + math.ceil(len(text.encode("utf-8")) / 3)

    # ---------------------------------------------------------------- adapters
    def served_adapters(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """The adapters the server has: name -> its entry (llama.cpp: id, path, scale; vLLM: the model entry)."""
        with self._lock:
            if self._served is None or refresh:
                self._served = self._ask_served()
            return self._served

    def _ask_served(self) -> dict[str, dict[str, Any]]:
        if self.flavour == "llamacpp":
            r = self._request("GET", "/lora-adapters")
            if r.status_code == 404:  # a server without LoRA support (e.g. llama-cpp-python's): the base only
                return {}
            if r.status_code >= 400:
                raise EngineUnavailable(f"GET /lora-adapters: HTTP {r.status_code}", retryable=False)
            out = {}
            for a in r.json():
                stem = Path(str(a.get("path", ""))).name.removesuffix(".gguf")
                name = _GGUF_NAME.match(stem).group("name") if stem else f"lora-{a['id']}"
                out[name] = {"id": int(a["id"]), "path": a.get("path"), "scale": a.get("scale")}
            return out
        base = self.base_name()
        return {d["id"]: {"model": d["id"], "path": d.get("root"), "parent": d.get("parent")}
                for d in self._models() if d.get("id") != base}

    def _adapter_loaded(self, name: str) -> bool:
        return name in (self._served or {})

    def list_adapters(self) -> list[dict[str, Any]]:
        """The server's adapters, with the card of the same-named local adapter when there is one, plus the local
        adapters the server does not serve (vLLM can load them; llama.cpp cannot at run time)."""
        served = self.served_adapters(refresh=True)
        local = {a["name"]: a for a in adapter_files.list_adapters(self.adapters_root)}
        out = []
        for name, entry in served.items():
            a = {**local.get(name, {"name": name, "path": entry.get("path"), "card": None}), "ok": True}
            a.pop("error", None)
            a.update(served=True, loaded=True, compatible=True, server_entry=entry, active=name == self._active)
            out.append(a)
        for name, a in local.items():
            if name in served:
                continue
            a = dict(a)
            a.update(served=False, loaded=False, active=name == self._active)
            if self.flavour == "vllm":
                a["compatible"] = bool(a.get("ok"))  # vLLM checks it against its base when it loads it
            else:
                a["compatible"] = False
                a.setdefault("error", f"not served by the engine at {self.url} (start llama-server with --lora)")
            out.append(a)
        return out

    def load_adapter(self, name: str) -> None:
        """Make sure the server serves ``name``: it does already, or (vLLM) load it with /v1/load_lora_adapter."""
        adapter_files.validate_name(name)
        with self._lock:
            if name in self.served_adapters():
                return
            if name in self.served_adapters(refresh=True):
                return
            if self.flavour != "vllm":
                raise adapter_files.AdapterError(
                    "not_found", f"adapter {name!r} is not served by the llama.cpp server at {self.url}: start it "
                                 "with --lora <the adapter's GGUF> (scripts/serve_llamacpp.sh)")
            d = adapter_files.adapter_dir(self.adapters_root, name)
            adapter_files.check_files(d)
            t0 = time.perf_counter()
            r = self._request("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(d)})
            if r.status_code >= 400:
                raise adapter_files.AdapterError("malformed", f"the vLLM server refused adapter {name!r}: "
                                                              f"HTTP {r.status_code}: {r.text[:300]}")
            self.load_times[f"adapter:{name}"] = round(time.perf_counter() - t0, 3)
            self.served_adapters(refresh=True)
            if name not in (self._served or {}):
                self._served[name] = {"model": name, "path": str(d)}

    # ---------------------------------------------------------------- generation
    def _payload(self, request: GenerationRequest, adapter: str | None) -> dict[str, Any]:
        g = self.settings.generation
        greedy = g.greedy if request.greedy is None else request.greedy
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "max_tokens": request.max_new_tokens or g.max_new_tokens,
            "temperature": 0.0 if greedy else (request.temperature or g.temperature),
            "top_p": 1.0 if greedy else (request.top_p or g.top_p),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if greedy and self.flavour == "llamacpp":
            body["top_k"] = 1
        elif not greedy and g.top_k:
            body["top_k"] = g.top_k
        seed = request.seed if request.seed is not None else g.seed
        if seed is not None:
            body["seed"] = seed
        if request.stop and not request.include_stop:  # the server stops early; with include_stop, cut here
            body["stop"] = list(request.stop)
        if self.flavour == "llamacpp":
            body["repeat_penalty"] = g.repetition_penalty
            body["cache_prompt"] = True  # reuse the KV cache of the consultation's shared prefix
            body["model"] = self._base_name or self.settings.model.base
            served = self.served_adapters()
            if served:  # every adapter with its scale: servers differ on what an adapter left out of the list gets
                body["lora"] = [{"id": e["id"], "scale": 1.0 if n == adapter else 0.0} for n, e in served.items()]
        else:
            body["repetition_penalty"] = g.repetition_penalty
            body["model"] = adapter if adapter is not None else self.base_name()
        return body

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> StreamHandle:
        cancel = cancel or threading.Event()
        adapter = self._active if request.adapter is ... else request.adapter
        if adapter is not None:
            self.load_adapter(adapter)  # adapter and engine errors in the caller, before the first piece
        body = self._payload(request, adapter)
        handle = StreamHandle(pieces=iter(()), cancel_event=cancel)
        handle.pieces = self._pieces(request, body, adapter, cancel, handle)
        return handle

    def _pieces(self, request: GenerationRequest, body: dict, adapter: str | None, cancel: threading.Event,
                handle: StreamHandle) -> Iterator[str]:
        t0 = time.perf_counter()
        stop_buf = _StopBuffer(request.stop, request.include_stop)
        state: dict[str, Any] = {"streamed": False, "chunks": 0, "usage": None, "finish": None, "t_first": None}
        text: list[str] = []

        def attempt():
            return self.client.stream("POST", "/v1/completions", json=body)

        for i in range(self.settings.model.remote_retries + 1):
            if i:
                time.sleep(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (i - 1)))
            try:
                with attempt() as resp:
                    if resp.status_code >= 500:
                        resp.read()
                        raise _Retry(f"HTTP {resp.status_code}: {resp.text[:200]}")
                    if resp.status_code >= 400:
                        resp.read()
                        raise EngineUnavailable(f"POST /v1/completions: HTTP {resp.status_code}: {resp.text[:300]}",
                                                retryable=False)
                    for piece in self._sse_text(resp, state):
                        if state["t_first"] is None:
                            state["t_first"] = time.perf_counter()
                        out = stop_buf.feed(piece)
                        if out:
                            state["streamed"] = True
                            text.append(out)
                            yield out
                        if stop_buf.stopped or cancel.is_set():
                            break  # leaving the block closes the connection: the server stops generating
                break
            except _Retry as e:
                logger.warning("model engine POST /v1/completions: {} (try {})", e, i + 1)
                last = str(e)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                if state["streamed"] or state["chunks"]:
                    raise EngineUnavailable(f"model engine at {self.url} failed mid-reply: {type(e).__name__}: {e}",
                                            retryable=False) from None
                logger.warning("model engine POST /v1/completions: {}: {} (try {})", type(e).__name__, e, i + 1)
                last = f"{type(e).__name__}: {e}"
        else:
            raise EngineUnavailable(f"model engine at {self.url} failed POST /v1/completions "
                                    f"{self.settings.model.remote_retries + 1} times; last: {last}")
        tail = stop_buf.flush()
        if tail and not cancel.is_set():
            text.append(tail)
            yield tail
        end = time.perf_counter()
        usage = state["usage"] or {}
        if cancel.is_set():
            reason = "cancel"
        elif stop_buf.stopped or state["finish"] == "stop":
            reason = "stop"
        else:
            reason = "length"
        prompt_tokens = usage.get("prompt_tokens")
        if prompt_tokens is None:
            prompt_tokens = self.count_tokens(request.prompt)
        handle.result = GenerationResult(
            text="".join(text).strip(),
            prompt_tokens=int(prompt_tokens),
            new_tokens=int(usage.get("completion_tokens") or state["chunks"]),
            ttft_s=(state["t_first"] or end) - t0,
            total_s=end - t0,
            stopped_by=reason,
            adapter=adapter,
            decode_loop=f"openai:{self.flavour}",
        )
        self.last_stats = {"usage": usage, "finish_reason": state["finish"], "chunks": state["chunks"]}

    @staticmethod
    def _sse_text(resp: httpx.Response, state: dict) -> Iterator[str]:
        """The text of each ``data:`` event of a streamed completion (usage and finish reason into ``state``)."""
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                ev = json.loads(data)
            except json.JSONDecodeError:
                continue
            if ev.get("usage"):
                state["usage"] = ev["usage"]
            if "error" in ev:
                raise EngineUnavailable(f"engine error: {ev['error']}", retryable=False)
            for ch in ev.get("choices") or []:
                if ch.get("finish_reason"):
                    state["finish"] = ch["finish_reason"]
                piece = ch.get("text") or ""
                if piece:
                    state["chunks"] += 1
                    yield piece

    def close(self) -> None:
        self.client.close()


def _resolve_remote(settings: Settings, url: str) -> ResolvedModel:
    """What the server runs, as far as this side knows: the local copy of the same GGUF (its checksum matches the
    adapters' cards), else just the configured name."""
    base = settings.model.base
    try:
        if base == BUILTIN_DEFAULT or str(base).endswith(".gguf"):
            from chatdoc.llm.llamacpp import resolve_gguf

            r = resolve_gguf(base, settings.path(settings.model.cache_dir))
            return ResolvedModel(r.name, "remote", url, r.path, r.checksum, r.is_base_model)
    except Exception as e:  # noqa: BLE001 - no local copy: the server's word only
        logger.debug("no local copy of {} ({})", base, e)
    return ResolvedModel(base, "remote", url, Path(url), "", False)
