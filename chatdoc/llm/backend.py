"""Generation backends.

``Backend`` is the small interface callers use (dialogue, CLI, UI, eval). ``TransformersBackend``
runs the base model in-process (bitsandbytes nf4/fp4/int8 or unquantized) with hot-swappable peft
LoRA adapters. Another backend (e.g. an OpenAI-compatible vLLM/llama.cpp server) only has to
implement the same protocol and be registered in :data:`BACKENDS`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chatdoc.config import Settings
from chatdoc.llm import adapters as adapter_files
from chatdoc.llm.prompt import STOP_SEQUENCES
from chatdoc.llm.source import ResolvedModel, resolve
from chatdoc.log import logger


@dataclass
class GenerationRequest:
    prompt: str
    max_new_tokens: int | None = None
    greedy: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = STOP_SEQUENCES
    adapter: str | None | type[Ellipsis] = ...  # ... = the backend's active adapter; None = base
    seed: int | None = None
    include_stop: bool = False  # keep the stop sequence in the text (e.g. stop at "?" and keep it)


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    total_s: float
    stopped_by: str  # stop | length | cancel
    adapter: str | None
    decode_loop: str = "transformers"  # or "chatdoc-gemma3" (llm/gemma3_decode.py)

    @property
    def decode_tok_s(self) -> float:
        dt = self.total_s - self.ttft_s
        return (self.new_tokens - 1) / dt if self.new_tokens > 1 and dt > 0 else 0.0


@dataclass
class StreamHandle:
    """Iterate for text pieces; ``result`` is filled when iteration ends; ``cancel()`` stops early."""

    pieces: Iterator[str]
    cancel_event: threading.Event
    result: GenerationResult | None = None
    _meta: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        return self.pieces

    def cancel(self) -> None:
        self.cancel_event.set()


@runtime_checkable
class Backend(Protocol):
    def info(self) -> dict[str, Any]: ...
    def count_tokens(self, text: str) -> int: ...
    def build_prompt(self, system: str, turns, max_new_tokens: int | None = None) -> str: ...
    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> StreamHandle: ...
    def generate(self, request: GenerationRequest) -> GenerationResult: ...
    def list_adapters(self) -> list[dict[str, Any]]: ...
    def activate_adapter(self, name: str | None) -> None: ...

    @property
    def active_adapter(self) -> str | None: ...


class _StopBuffer:
    """Holds back text that might be the start of a stop sequence; reports when one appears."""

    def __init__(self, stops: tuple[str, ...], include: bool = False):
        self.include = include
        self.stops = tuple(s for s in stops if s)
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buf += piece
        hits = [(i, s) for s in self.stops if (i := self.buf.find(s)) >= 0]
        if hits:
            cut, stop = min(hits)
            end = cut + len(stop) if self.include else cut
            out, self.buf, self.stopped = self.buf[:end], "", True
            return out
        if len(self.buf) > self.hold:
            out, self.buf = self.buf[: len(self.buf) - self.hold], self.buf[len(self.buf) - self.hold :]
            return out
        return ""

    def flush(self) -> str:
        out, self.buf = ("" if self.stopped else self.buf), ""
        return out


class AdapterHost:
    """Adapter bookkeeping shared by the backends: the default adapter, the listing, activation, and generate()
    over stream(). A backend provides ``_lock``, ``_active``, ``adapters_root``, ``resolved``, ``load_adapter``,
    ``stream`` and ``_adapter_loaded(name)``."""

    @property
    def active_adapter(self) -> str | None:
        return self._active

    def _adapter_loaded(self, name: str) -> bool:  # pragma: no cover - each backend says
        raise NotImplementedError

    def _describe_adapter(self, entry: dict[str, Any]) -> None:
        """Backend-specific fields of one ``list_adapters`` entry (none by default)."""

    def build_prompt(self, system: str, turns, max_new_tokens: int | None = None) -> str:
        """The prompt for the next doctor turn, trimmed to the context window (oldest turns first). Uses the
        backend's ``count_tokens``, ``use_chat_template`` and ``_render_chat(messages)``."""
        from chatdoc.llm.prompt import chat_template_messages, render_with_budget

        budget = self.settings.model.max_context_tokens - (max_new_tokens or self.settings.generation.max_new_tokens)
        turns = list(turns)
        if self.use_chat_template:
            while True:
                prompt = self._render_chat(chat_template_messages(system, turns))
                if len(turns) <= 1 or self.count_tokens(prompt) <= budget:
                    return prompt
                turns.pop(0)
                logger.info("context policy: dropped the oldest turn to fit {} tokens", budget)
        prompt, dropped = render_with_budget(system, turns, self.count_tokens, budget)
        if dropped:
            logger.info("context policy: dropped {} oldest turns to fit {} tokens", dropped, budget)
        return prompt

    def _activate_configured(self, name: str | None) -> None:
        """Activate the configured adapter. A missing or broken one must not take the app down: serve the base
        model, say so in the log and in info() (``adapter_error``; the researcher view shows it)."""
        self.adapter_error: str | None = None
        if name:
            try:
                self.activate_adapter(name)
            except adapter_files.AdapterError as e:
                self.adapter_error = f"configured adapter {name!r} not used: {e}"
                logger.warning("{}; serving the base model", self.adapter_error)

    def _common_info(self) -> dict[str, Any]:
        """The ``info()`` fields every backend reports the same way."""
        return {
            "base_model": self.resolved.name,
            "source_kind": self.resolved.kind,
            "source": self.resolved.source,
            "cache_path": str(self.resolved.path),
            "checksum": self.resolved.checksum,
            "quantization": self.quantization,
            "device": self.device,
            "parameters": self.quantization["parameters"],
            "active_adapter": self._active,
            "adapter_error": self.adapter_error,
        }

    def list_adapters(self) -> list[dict[str, Any]]:
        out = adapter_files.list_adapters(self.adapters_root)
        for a in out:
            a["active"] = a["name"] == self._active
            a["loaded"] = self._adapter_loaded(a["name"])
            card = a.get("card") or {}
            a["compatible"] = bool(a.get("ok")) and card.get("base_model_checksum") == self.resolved.checksum
            self._describe_adapter(a)
        return out

    def activate_adapter(self, name: str | None) -> None:
        """Make ``name`` (or the base model, for None) the default for new generations."""
        with self._lock:
            if name is not None:
                self.load_adapter(name)
            self._active = name

    def generate(self, request: GenerationRequest) -> GenerationResult:
        h = self.stream(request)
        for _ in h:
            pass
        assert h.result is not None
        return h.result


class TransformersBackend(AdapterHost):
    """In-process transformers model with optional bitsandbytes quantization and peft adapters."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.RLock()  # one generation / adapter change at a time
        self._active: str | None = None
        self._loaded_adapters: set[str] = set()
        self.load_times: dict[str, float] = {}
        self.adapters_root = settings.path(settings.adapters.dir)
        t0 = time.perf_counter()
        self.resolved: ResolvedModel = resolve(settings.model.base, settings.path(settings.model.cache_dir))
        self.load_times["resolve_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        self._load()
        self.load_times["load_s"] = time.perf_counter() - t1
        self._activate_configured(settings.adapters.active)

    # ---------------------------------------------------------------- loading
    def _device(self) -> str:
        import torch

        want = self.settings.model.device
        if want == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("model.device is 'cuda' but no CUDA device is available")
        if want == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return want

    def _quant_config(self):
        import torch
        from transformers import BitsAndBytesConfig

        m = self.settings.model
        dtype = getattr(torch, m.compute_dtype)
        if m.quantization in ("nf4", "fp4"):
            return BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=m.quantization,
                bnb_4bit_use_double_quant=m.double_quant,
                bnb_4bit_compute_dtype=dtype,
            )
        if m.quantization == "int8":
            return BitsAndBytesConfig(load_in_8bit=True)
        return None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from chatdoc.llm import cpu_decode, gemma3_decode

        m = self.settings.model
        if m.threads:
            torch.set_num_threads(m.threads)
        self.device = self._device()
        path = str(self.resolved.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        kwargs: dict[str, Any] = {"dtype": getattr(torch, m.compute_dtype), "local_files_only": True}
        qc = self._quant_config()
        if qc is not None:
            kwargs["quantization_config"] = qc
            kwargs["device_map"] = {"": self.device if self.device == "cpu" else 0}
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        if qc is None:
            model.to(self.device)
        model.eval()
        self.base_model = model
        self.model = model  # becomes a PeftModel once an adapter is loaded
        self.quantization = detect_quantization(model)
        # CPU: fbgemm kernels instead of bitsandbytes' dequantize-per-call (~4x decode); never raises
        self.cpu_kernels = cpu_decode.apply(model, m.cpu_kernels, self.device)
        self.decoder = None  # own generation loop, where it covers the model (else model.generate)
        if self.cpu_kernels["in_effect"] == "fbgemm" and m.decode_loop == "auto":
            kernels = self.settings.path(m.cache_dir).parent / "kernels" if m.nf4_kernel else None
            t_build = time.perf_counter()
            self.decoder = gemma3_decode.build(model, m.max_context_tokens, kernels)
            self.cpu_kernels["decode_loop_build_s"] = round(time.perf_counter() - t_build, 2)
        if self.decoder is not None:
            self.cpu_kernels["decode_loop"] = "chatdoc-gemma3"
            self.cpu_kernels["nf4_kernel_layers"] = self.decoder.nf4_layers
            self.cpu_kernels["extra_bytes"] += self.decoder.extra_bytes
        else:
            self.cpu_kernels["decode_loop"] = "transformers"
        self.use_chat_template = bool(getattr(self.tokenizer, "chat_template", None)) and not self.resolved.is_base_model
        logger.info(
            "model loaded: base={} quantization={} device={} params={}",
            self.resolved.name,
            self.quantization["in_effect"],
            self.device,
            self.quantization["parameters"],
        )

    # ---------------------------------------------------------------- info
    def info(self) -> dict[str, Any]:
        # parameters + buffers, plus the fast path's packed weight copies (not parameters)
        mem = self.base_model.get_memory_footprint() + self.cpu_kernels.get("extra_bytes", 0)
        return {
            **self._common_info(),
            "memory_footprint_bytes": mem,
            "cpu_kernels": self.cpu_kernels,
            "loaded_adapters": sorted(self._loaded_adapters),
            "prompt_format": "chat_template" if self.use_chat_template else "chatdoc",
            "max_context_tokens": self.settings.model.max_context_tokens,
            "load_times": self.load_times,
        }

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # ---------------------------------------------------------------- adapters
    def _adapter_loaded(self, name: str) -> bool:
        return name in self._loaded_adapters

    def load_adapter(self, name: str) -> None:
        """Load adapter weights next to the base (no base reload). Idempotent."""
        from peft import PeftModel

        with self._lock:
            if name in self._loaded_adapters:
                return
            d, _card, _cfg = adapter_files.load_checked(self.adapters_root, name, self.resolved.checksum)
            if self.decoder is not None:
                self.decoder.forget(name)
            t0 = time.perf_counter()
            try:
                if self.model is self.base_model:
                    self.model = PeftModel.from_pretrained(self.base_model, str(d), adapter_name=name, is_trainable=False)
                else:
                    self.model.load_adapter(str(d), adapter_name=name, is_trainable=False)
            except Exception as e:  # shape mismatch, bad tensors, unknown target modules ...
                self._drop_partial(name)
                raise adapter_files.AdapterError("malformed", f"adapter {name!r} could not be loaded: {e}") from None
            self._loaded_adapters.add(name)
            self.model.eval()
            logger.info("adapter loaded: {} in {:.3f}s", name, time.perf_counter() - t0)

    def _drop_partial(self, name: str) -> None:
        try:
            if self.model is not self.base_model and name in getattr(self.model, "peft_config", {}):
                self.model.delete_adapter(name)
        except Exception:  # pragma: no cover - best effort cleanup
            pass

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            if name in self._loaded_adapters:
                if self.decoder is not None:
                    self.decoder.forget(name)
                self.model.delete_adapter(name)
                self._loaded_adapters.discard(name)
                if not self._loaded_adapters:  # restore the plain base modules (no merge)
                    self.model = self.model.unload()
                    self.base_model = self.model
                else:
                    self.model.set_adapter(sorted(self._loaded_adapters)[0])
            if self._active == name:
                self._active = None

    def _use_adapter(self, name: str | None):
        """Context manager selecting the adapter for one generation (caller holds the lock)."""
        import contextlib

        if name is None:
            if self.model is self.base_model:
                return contextlib.nullcontext()
            return self.model.disable_adapter()
        self.load_adapter(name)
        self.model.set_adapter(name)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- generation
    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> StreamHandle:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        g = self.settings.generation
        cancel = cancel or threading.Event()
        adapter = self._active if request.adapter is ... else request.adapter
        if adapter is not None:
            adapter_files.validate_name(adapter)
            self.load_adapter(adapter)  # raise errors in the caller's thread
        greedy = g.greedy if request.greedy is None else request.greedy
        max_new = request.max_new_tokens or g.max_new_tokens
        enc = self.tokenizer(request.prompt, return_tensors="pt")
        budget = self.settings.model.max_context_tokens - max_new
        ids = enc["input_ids"]
        if ids.shape[1] > budget:  # last resort; callers trim whole turns first (prompt.render_with_budget)
            logger.warning("prompt of {} tokens cut to {} (context policy)", ids.shape[1], budget)
            ids = ids[:, -budget:]
        ids = ids.to(self.model.device if hasattr(self.model, "device") else self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        stop_buf = _StopBuffer(request.stop, request.include_stop)
        handle = StreamHandle(pieces=iter(()), cancel_event=cancel)
        meta = handle._meta
        meta["new_tokens"] = 0

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                meta["new_tokens"] = input_ids.shape[1] - ids.shape[1]
                if meta["new_tokens"] == 1:
                    meta.setdefault("t_first", time.perf_counter())
                return cancel.is_set() or stop_buf.stopped

        gen_kwargs: dict[str, Any] = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Stop()]),
            repetition_penalty=g.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(
                do_sample=True,
                temperature=request.temperature or g.temperature,
                top_p=request.top_p or g.top_p,
                top_k=g.top_k,
            )
        seed = request.seed if request.seed is not None else g.seed
        errors: list[BaseException] = []

        def _run():
            with self._lock:
                try:
                    if seed is not None:
                        torch.manual_seed(seed)
                    with self._use_adapter(adapter), torch.inference_mode():
                        lora = self.decoder.lora_for(self.model, adapter) if self.decoder is not None else None
                        if lora is not None:
                            meta["decode_loop"] = "chatdoc-gemma3"
                            self.decoder.generate(**gen_kwargs, lora=lora)
                        else:
                            meta["decode_loop"] = "transformers"
                            self.model.generate(**gen_kwargs)
                except BaseException as e:  # surface in the consumer thread
                    logger.exception("generation failed")
                    errors.append(e)
                    streamer.end()

        t0 = time.perf_counter()
        thread = threading.Thread(target=_run, name="chatdoc-generate", daemon=True)

        def _pieces() -> Iterator[str]:
            thread.start()
            text = []
            first = None
            broke = False
            for piece in streamer:
                out = stop_buf.feed(piece)
                if out:
                    first = first or time.perf_counter()
                    text.append(out)
                    yield out
                if stop_buf.stopped or cancel.is_set():
                    broke = True
                    break
            if broke:  # generate() sees the stop on its next step; drain until it ends the stream
                for _ in streamer:
                    pass
            thread.join()
            tail = stop_buf.flush()
            if tail and not cancel.is_set():
                text.append(tail)
                yield tail
            if errors:
                raise errors[0]
            end = time.perf_counter()
            t_first = meta.get("t_first", first or end)
            reason = "cancel" if cancel.is_set() else ("stop" if stop_buf.stopped else "length")
            if reason == "length" and meta["new_tokens"] < max_new:
                reason = "stop"  # eos
            handle.result = GenerationResult(
                text="".join(text).strip(),
                prompt_tokens=int(ids.shape[1]),
                new_tokens=int(meta["new_tokens"]),
                ttft_s=t_first - t0,
                total_s=end - t0,
                stopped_by=reason,
                adapter=adapter,
                decode_loop=meta.get("decode_loop", "transformers"),
            )

        handle.pieces = _pieces()
        return handle


def detect_quantization(model) -> dict[str, Any]:
    """Report the quantization actually in effect by inspecting the layers (never assumed)."""
    counts: dict[str, int] = {}
    quant_type = None
    for mod in model.modules():
        cls = type(mod).__name__
        if cls in ("Linear4bit", "Linear8bitLt", "Linear"):
            counts[cls] = counts.get(cls, 0) + 1
            if cls == "Linear4bit" and quant_type is None:
                qs = getattr(mod.weight, "quant_state", None)
                quant_type = getattr(qs, "quant_type", None) or getattr(mod.weight, "quant_type", None)
    if counts.get("Linear4bit"):
        in_effect = quant_type or "4bit"
    elif counts.get("Linear8bitLt"):
        in_effect = "int8"
    else:
        in_effect = "none"
    n_params = sum(p.numel() for p in model.parameters())
    return {"in_effect": in_effect, "layer_counts": counts, "parameters": int(n_params)}


BACKENDS = {"transformers": TransformersBackend}

_backend: Backend | None = None
_backend_lock = threading.Lock()


def get_backend(settings: Settings | None = None) -> Backend:
    """The process-wide backend, loaded on first use (shared by UI, CLI, dialogue, tests)."""
    global _backend
    with _backend_lock:
        if _backend is None:
            from chatdoc.config import get_settings

            s = settings or get_settings()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            factory = BACKENDS.get(s.model.backend)
            if factory is None:
                raise ValueError(f"model.backend {s.model.backend!r} is not one of {sorted(BACKENDS)}")
            _backend = factory(s)
        return _backend


def reset_backend() -> None:
    global _backend
    with _backend_lock:
        _backend = None
