"""llama.cpp backend: the built-in GGUF run in-process by ``llama-cpp-python`` (``model.backend: llamacpp``).

* **Model**: the GGUF file itself (no materialization to safetensors); ``model.base`` must be the built-in
  model or a ``.gguf`` file.
* **Adapters**: the project's PEFT LoRA adapters are converted once to GGUF LoRA files
  (:mod:`chatdoc.llm.gguf_lora`, cached under ``<model.cache_dir>/gguf-lora``), loaded next to the base with
  ``llama_adapter_lora_init`` and switched per request with ``llama_set_adapters_lora`` (no base reload).
* **Prompt, stops, sampling**: chatdoc's prompt format (:mod:`chatdoc.llm.prompt`), the request's stop
  sequences, and the transformers backend's sampling semantics, applied here in NumPy to llama.cpp's
  logits: repetition penalty over prompt + generated tokens (HF ``RepetitionPenaltyLogitsProcessor``), then
  greedy arg-max, or temperature -> top-k -> top-p -> a draw from a seeded generator.
* **Streaming**: ``stream()`` returns a plain generator (no thread, no queue): each step samples, yields the
  new text and evaluates the token.
* **Prefix cache**: one llama.cpp context is kept between calls. Before a prompt is evaluated, the longest
  common token prefix with what the context already holds (previous prompt + its generated tokens) is kept
  and only the rest is evaluated (``Llama.eval`` drops the KV cells past ``n_tokens``). Gemma 3's sliding-
  window layers are given a full-size KV cache (``swa_full``) so that a kept prefix is exact. The KV cache
  is dropped when the adapter changes (its keys and values were computed with other weights).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chatdoc.config import Settings
from chatdoc.llm import adapters as adapter_files
from chatdoc.llm.backend import AdapterHost, GenerationRequest, GenerationResult, StreamHandle, _StopBuffer
from chatdoc.llm.gguf_lora import BaseInfo, ensure_gguf_lora, read_base_info
from chatdoc.llm.source import BUILTIN_DEFAULT, ModelNotFoundError, ResolvedModel, _cached_checksum, builtin_gguf_path
from chatdoc.log import logger

LLAMA_CPP_VERSION = "0.3.36"
INSTALL_HINT = (
    f"pip install llama-cpp-python=={LLAMA_CPP_VERSION} (it compiles llama.cpp from source: about 10 minutes on "
    "a 2-core CPU; pip caches the wheel afterwards), or set model.backend: transformers"
)
DECODE_LOOP = "llama.cpp"


class BackendUnavailableError(ModelNotFoundError):
    """The llama.cpp backend cannot start (package missing, or a model it cannot run)."""


def import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:
        raise BackendUnavailableError(f"model.backend is 'llamacpp' but llama-cpp-python is not importable ({e}): "
                                      + INSTALL_HINT) from None
    return llama_cpp


def resolve_gguf(base: str, cache_dir: Path) -> ResolvedModel:
    """``model.base`` as a GGUF file (the built-in model or a ``.gguf`` path), with its sha256."""
    cache_dir = Path(cache_dir).expanduser()
    if base == BUILTIN_DEFAULT:
        path, kind, is_base = builtin_gguf_path(), "builtin-gguf", True
    else:
        path, kind, is_base = Path(base).expanduser(), "gguf", False
        if path.suffix != ".gguf":
            raise BackendUnavailableError(
                f"model.backend 'llamacpp' runs GGUF models only; model.base {base!r} is not a .gguf file "
                "(use model.backend: transformers for a transformers checkpoint)")
        if not path.is_file():
            raise ModelNotFoundError(f"model.base: GGUF file not found: {path}")
    checksum = _cached_checksum(path, cache_dir)
    return ResolvedModel(base, kind, str(path), path, checksum, is_base_model=is_base)


class LlamaCppBackend(AdapterHost):
    """In-process llama.cpp model with GGUF LoRA adapters switched per request."""

    kind = "llamacpp"

    def __init__(self, settings: Settings):
        self.llama_cpp = import_llama_cpp()
        self.settings = settings
        self._lock = threading.RLock()  # one llama.cpp context: one generation / adapter change at a time
        self._active: str | None = None
        self._adapters: dict[str, Any] = {}  # name -> llama_adapter_lora pointer
        self._lora_files: dict[str, str] = {}
        self._kv_adapter: str | None = None  # the adapter the context's KV cache was computed with
        self.load_times: dict[str, float] = {}
        self.last_stats: dict[str, Any] = {}
        self.adapters_root = settings.path(settings.adapters.dir)
        self.cache_dir = settings.path(settings.model.cache_dir)
        m = settings.model
        t0 = time.perf_counter()
        self.resolved = resolve_gguf(m.base, self.cache_dir)
        self.load_times["resolve_s"] = time.perf_counter() - t0
        self.threads = m.threads or os.cpu_count() or 1
        t1 = time.perf_counter()
        self.llm = self.llama_cpp.Llama(
            model_path=str(self.resolved.path),
            n_ctx=m.max_context_tokens,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            swa_full=True,  # exact prefix reuse for the sliding-window layers (see the module docstring)
            verbose=False,
        )
        self.load_times["load_s"] = time.perf_counter() - t1
        self.device = "cpu"
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = self.llm.n_ctx()
        self._vocab = self.llama_cpp.llama_model_get_vocab(self.llm.model)
        self._bos = self.llm.token_bos()
        self.metadata = dict(self.llm.metadata or {})
        self._chat_template = self.metadata.get("tokenizer.chat_template")
        self.use_chat_template = bool(self._chat_template) and not self.resolved.is_base_model
        self.quantization = {
            "in_effect": _file_type(self.metadata.get("general.file_type")),
            "layer_counts": {},
            "parameters": int(self.llama_cpp.llama_model_n_params(self.llm.model)),
        }
        logger.info("model loaded (llama.cpp): base={} type={} threads={} n_ctx={}", self.resolved.name,
                    self.quantization["in_effect"], self.threads, self.n_ctx)
        self._activate_configured(settings.adapters.active)

    @functools.cached_property
    def base_info(self) -> BaseInfo:
        """The base GGUF's architecture and tensor shapes; read only to convert an adapter (gguf's reader
        parses the whole header, ~10 s for Gemma 3's 262k-token vocabulary)."""
        return read_base_info(self.resolved.path)

    # ---------------------------------------------------------------- info
    def info(self) -> dict[str, Any]:
        size = int(self.llama_cpp.llama_model_size(self.llm.model))
        return {
            **self._common_info(),
            "memory_footprint_bytes": size,
            "engine": {"name": DECODE_LOOP, "threads": self.threads,
                       "llama_cpp_python": getattr(self.llama_cpp, "__version__", "?")},
            "loaded_adapters": sorted(self._adapters),
            "adapter_files": dict(self._lora_files),
            "prompt_format": "chat_template" if self.use_chat_template else "chatdoc",
            "max_context_tokens": self.settings.model.max_context_tokens,
            "load_times": self.load_times,
        }

    # ---------------------------------------------------------------- tokens and prompts
    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` with BOS. Control-token text becomes control tokens only in a chat template."""
        special = self.use_chat_template
        add_bos = True
        if special and self._bos >= 0 and text.startswith(self._piece(self._bos, special=True).decode("utf-8", "ignore")):
            add_bos = False  # the template wrote it
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _render_chat(self, messages: list[dict[str, str]]) -> str:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message):
            raise ValueError(message)

        tmpl = env.from_string(self._chat_template)
        piece = lambda t: self._piece(t, special=True).decode("utf-8", "ignore") if t >= 0 else ""  # noqa: E731
        return tmpl.render(messages=messages, add_generation_prompt=True, raise_exception=raise_exception,
                           bos_token=piece(self._bos), eos_token=piece(self.llm.token_eos()))

    def _piece(self, token: int, special: bool = False) -> bytes:
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self.llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    # ---------------------------------------------------------------- adapters
    def _adapter_loaded(self, name: str) -> bool:
        return name in self._adapters

    def _describe_adapter(self, entry: dict[str, Any]) -> None:
        if entry["name"] in self._lora_files:
            entry["gguf"] = self._lora_files[entry["name"]]

    def load_adapter(self, name: str) -> None:
        """Convert (first time, cached) and load the adapter next to the base (no base reload). Idempotent."""
        with self._lock:
            if name in self._adapters:
                return
            d, _card, _cfg = adapter_files.load_checked(self.adapters_root, name, self.resolved.checksum)
            t0 = time.perf_counter()
            try:
                path = ensure_gguf_lora(d, name, self.cache_dir, lambda: self.base_info)
            except adapter_files.AdapterError:
                raise
            except Exception as e:  # unreadable safetensors, bad JSON ...
                raise adapter_files.AdapterError("malformed", f"adapter {name!r} could not be converted: {e}") from None
            t1 = time.perf_counter()
            with _quiet_llama_log():  # "lora for ... cannot use buft CPU_REPACK, fallback to CPU", per tensor
                ptr = self.llama_cpp.llama_adapter_lora_init(self.llm.model, str(path).encode("utf-8"))
            if not ptr:
                raise adapter_files.AdapterError("malformed", f"adapter {name!r}: llama.cpp refused {path.name}")
            self._adapters[name] = ptr
            self._lora_files[name] = str(path)
            self.load_times[f"adapter:{name}"] = {"convert_s": round(t1 - t0, 3), "load_s": round(time.perf_counter() - t1, 3)}
            logger.info("adapter loaded (llama.cpp): {} in {:.3f}s", name, time.perf_counter() - t0)

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            ptr = self._adapters.pop(name, None)
            if ptr is not None:
                self._set_lora(None)
                self.llama_cpp.llama_adapter_lora_free(ptr)
                self._lora_files.pop(name, None)
            if self._active == name:
                self._active = None

    def _set_lora(self, name: str | None) -> None:
        """Put ``name``'s LoRA (or none) on the context; a change invalidates the KV cache. Caller holds the lock."""
        lc = self.llama_cpp
        if name is None:
            lc.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        else:
            arr = (lc.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            if lc.llama_set_adapters_lora(self.llm.ctx, arr, 1, scales) != 0:
                raise adapter_files.AdapterError("malformed", f"adapter {name!r}: llama.cpp could not apply it")
        if name != self._kv_adapter:
            self.llm.n_tokens = 0  # nothing in the KV cache is valid under other weights
            self._kv_adapter = name

    # ---------------------------------------------------------------- generation
    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> StreamHandle:
        g = self.settings.generation
        cancel = cancel or threading.Event()
        adapter = self._active if request.adapter is ... else request.adapter
        if adapter is not None:
            adapter_files.validate_name(adapter)
            self.load_adapter(adapter)  # raise adapter errors in the caller, before the first piece
        params = {
            "greedy": g.greedy if request.greedy is None else request.greedy,
            "max_new": request.max_new_tokens or g.max_new_tokens,
            "temperature": request.temperature or g.temperature,
            "top_p": request.top_p or g.top_p,
            "top_k": g.top_k,
            "repetition_penalty": g.repetition_penalty,
            "seed": request.seed if request.seed is not None else g.seed,
        }
        handle = StreamHandle(pieces=iter(()), cancel_event=cancel)
        handle.pieces = self._pieces(request, adapter, params, cancel, handle)
        return handle

    def _pieces(self, request: GenerationRequest, adapter: str | None, p: dict, cancel: threading.Event,
                handle: StreamHandle) -> Iterator[str]:
        t0 = time.perf_counter()
        with self._lock:
            yield from self._run(request, adapter, p, cancel, handle, t0)

    def _run(self, request, adapter, p, cancel, handle, t0) -> Iterator[str]:
        llm, lc = self.llm, self.llama_cpp
        max_new = p["max_new"]
        ids = self.tokenize(request.prompt)
        budget = max(1, self.n_ctx - max_new)
        if len(ids) > budget:  # last resort; callers trim whole turns first (prompt.render_with_budget)
            logger.warning("prompt of {} tokens cut to {} (context policy)", len(ids), budget)
            ids = ([ids[0]] + ids[-(budget - 1):]) if ids and ids[0] == self._bos and budget > 1 else ids[-budget:]
        self._set_lora(adapter)
        # prefix cache: keep the KV cells of the longest common prefix, evaluate the rest (at least one token,
        # so that the logits are those of this prompt's last position)
        n_have = llm.n_tokens
        keep = 0
        if n_have:
            have = llm.input_ids[: min(n_have, len(ids))]
            diff = np.flatnonzero(have != np.asarray(ids[: len(have)], dtype=have.dtype))
            keep = int(diff[0]) if diff.size else len(have)
        keep = min(keep, len(ids) - 1)
        llm.n_tokens = keep
        llm.eval(ids[keep:])
        t_prefill = time.perf_counter()
        handle._meta.update(prompt_tokens=len(ids), prefix_reused=keep, prefill_s=t_prefill - t0)

        p["rng"] = np.random.default_rng(p["seed"])
        seen = np.zeros(self.n_vocab, dtype=bool)
        seen[np.asarray(ids, dtype=np.int64)] = True
        seen_idx = np.flatnonzero(seen)
        stop_buf = _StopBuffer(request.stop, request.include_stop)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text: list[str] = []
        new_tokens = 0
        t_first = None
        eog = False
        while new_tokens < max_new and not cancel.is_set():
            logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(llm.ctx, -1), shape=(self.n_vocab,))
            tok = sample(logits, seen_idx, p)
            new_tokens += 1
            if t_first is None:
                t_first = time.perf_counter()
            if lc.llama_vocab_is_eog(self._vocab, tok):
                eog = True
                break
            out = stop_buf.feed(utf8.decode(self._piece(tok)))
            if out:
                text.append(out)
                yield out
            if stop_buf.stopped or cancel.is_set():
                break
            if new_tokens < max_new:
                llm.eval([tok])  # the next step's logits; the token stays in the cache for the next call's prefix
            if not seen[tok]:
                seen[tok] = True
                seen_idx = np.append(seen_idx, tok)
        tail = stop_buf.feed(utf8.decode(b"", final=True)) + stop_buf.flush()
        if tail and not cancel.is_set():
            text.append(tail)
            yield tail
        end = time.perf_counter()
        if cancel.is_set():
            reason = "cancel"
        elif stop_buf.stopped or eog:
            reason = "stop"
        else:
            reason = "length"
        t_first = t_first or end
        handle.result = GenerationResult(
            text="".join(text).strip(),
            prompt_tokens=len(ids),
            new_tokens=new_tokens,
            ttft_s=t_first - t0,
            total_s=end - t0,
            stopped_by=reason,
            adapter=adapter,
            decode_loop=DECODE_LOOP,
        )
        self.last_stats = dict(handle._meta)

    def close(self) -> None:
        """Free the context and model (adapters are freed with the model)."""
        with self._lock:
            self._adapters.clear()
            self.llm.close()


def sample(logits: np.ndarray, seen_idx: np.ndarray, p: dict) -> int:
    """One token, with the transformers backend's semantics (``model.generate`` with the same settings).

    Repetition penalty on every token of prompt + output (divide positive logits, multiply negative ones),
    then arg-max when greedy; else temperature, top-k (ties at the k-th value kept), top-p (smallest set
    whose probability exceeds ``top_p``, at least one token) and a draw from ``p["rng"]``/seeded generator.
    """
    x = np.array(logits, dtype=np.float32)  # a copy: ``logits`` is llama.cpp's buffer
    rep = p["repetition_penalty"]
    if rep != 1.0 and seen_idx.size:
        v = x[seen_idx]
        x[seen_idx] = np.where(v < 0, v * rep, v / rep)
    if p["greedy"]:
        return int(np.argmax(x))
    x /= p["temperature"]
    k = p["top_k"]
    if k and k < x.size:
        thr = np.partition(x, -k)[-k]
        cand = np.flatnonzero(x >= thr)
    else:
        cand = np.arange(x.size)
    c = x[cand].astype(np.float64)
    order = np.argsort(c, kind="stable")  # ascending, as HF's TopPLogitsWarper
    c, cand = c[order], cand[order]
    probs = np.exp(c - c.max())
    probs /= probs.sum()
    if p["top_p"] < 1.0:
        cum = np.cumsum(probs)
        keep = cum > (1.0 - p["top_p"])
        keep[-1] = True
        c, cand = c[keep], cand[keep]
        probs = np.exp(c - c.max())
        probs /= probs.sum()
    rng = p.get("rng")
    if rng is None:
        rng = p["rng"] = np.random.default_rng(p["seed"])
    return int(cand[rng.choice(probs.size, p=probs)])


@contextlib.contextmanager
def _quiet_llama_log():
    """Silence llama.cpp's log for one call (llama-cpp-python 0.3.36 maps ggml's WARN level to ERROR, so
    ``verbose=False`` does not hide warnings)."""
    log = logging.getLogger("llama-cpp-python")
    old = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(old)


def _file_type(ft) -> str:
    try:
        import gguf

        return gguf.LlamaFileType(int(ft)).name.removeprefix("MOSTLY_").removeprefix("ALL_").lower()
    except Exception:
        return "gguf"
