"""Generation backends.

``Backend`` is the small interface callers use (dialogue, CLI, UI, eval). Three implement it (docs/RUNTIME.md):

* ``transformers`` (:class:`TransformersBackend`, here): the base model in-process with bitsandbytes nf4/fp4/int8
  (or unquantized) and hot-swappable peft LoRA adapters: the GPU path, the training (QLoRA) path and the reference;
* ``llamacpp`` (:mod:`chatdoc.llm.llamacpp`): the GGUF in-process through llama-cpp-python, the CPU default;
* ``openai`` (:mod:`chatdoc.llm.remote`): an OpenAI-compatible server (llama.cpp server, vLLM) for scale-out.

``model.backend: auto`` picks llamacpp or transformers (:func:`choose_backend`). :func:`get_backend` keeps one
backend per kind per process; a caller that needs a particular engine (the adapter evaluation needs the torch
model's logits) asks for it with ``kind=``.
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

# What a patient is told when the model engine is down (EngineUnavailable.patient_message)
PATIENT_MESSAGE = (
    "Sorry, the assistant's language model is not reachable at the moment. Your answers so far are saved: "
    "please try again in a minute, and the consultation will continue where it stopped. "
    "If you feel very unwell, do not wait: contact your doctor or the emergency number."
)


class EngineUnavailable(RuntimeError):
    """The model engine cannot serve the request (down, unreachable, timing out, failing). ``patient_message`` is
    the one thing to show the patient; ``str(e)`` says what happened, for the log."""

    patient_message = PATIENT_MESSAGE

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


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
    decode_loop: str = "transformers"  # the engine that generated: transformers | llama.cpp | openai:<flavour>

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
            "backend": self.kind,
            "backend_choice": getattr(self, "backend_choice", f"model.backend: {self.kind}"),
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

    kind = "transformers"

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
        return {
            **self._common_info(),
            "memory_footprint_bytes": self.base_model.get_memory_footprint(),  # parameters + buffers
            "engine": {"name": "transformers", "threads": self._threads()},
            "loaded_adapters": sorted(self._loaded_adapters),
            "prompt_format": "chat_template" if self.use_chat_template else "chatdoc",
            "max_context_tokens": self.settings.model.max_context_tokens,
            "load_times": self.load_times,
        }

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _threads(self) -> int | None:
        import torch

        return torch.get_num_threads() if self.device == "cpu" else None

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
        """``model.generate`` in a worker thread feeding a ``TextIteratorStreamer`` (the way transformers streams);
        the generator cuts the text at the stop sequences. A stop, a cancel or a consumer that stops iterating
        ends ``generate`` at its next step (a stopping criterion)."""
        g = self.settings.generation
        cancel = cancel or threading.Event()
        adapter = self._active if request.adapter is ... else request.adapter
        if adapter is not None:
            adapter_files.validate_name(adapter)
            self.load_adapter(adapter)  # raise errors in the caller's thread, before the first piece
        max_new = request.max_new_tokens or g.max_new_tokens
        ids = self.tokenizer(request.prompt, return_tensors="pt")["input_ids"]
        budget = self.settings.model.max_context_tokens - max_new
        if ids.shape[1] > budget:  # last resort; callers trim whole turns first (prompt.render_with_budget)
            logger.warning("prompt of {} tokens cut to {} (context policy)", ids.shape[1], budget)
            ids = ids[:, -budget:]
        handle = StreamHandle(pieces=iter(()), cancel_event=cancel)
        handle.pieces = self._pieces(request, ids, adapter, max_new, cancel, handle)
        return handle

    def _generate_kwargs(self, request: GenerationRequest, max_new: int) -> dict[str, Any]:
        g = self.settings.generation
        kw: dict[str, Any] = dict(max_new_tokens=max_new, repetition_penalty=g.repetition_penalty,
                                  pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if (g.greedy if request.greedy is None else request.greedy):
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kw.update(do_sample=True, temperature=request.temperature or g.temperature,
                      top_p=request.top_p or g.top_p, top_k=g.top_k)
        return kw

    def _pieces(self, request: GenerationRequest, ids, adapter: str | None, max_new: int, cancel: threading.Event,
                handle: StreamHandle) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        stop_buf = _StopBuffer(request.stop, request.include_stop)
        done = threading.Event()  # the consumer stopped iterating
        steps: list[float] = []  # when each new token was produced (the criterion runs once per token)

        class _Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                steps.append(time.perf_counter())
                return cancel.is_set() or stop_buf.stopped or done.is_set()

        ids = ids.to(self.model.device if hasattr(self.model, "device") else self.device)
        kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer,
                      stopping_criteria=StoppingCriteriaList([_Halt()]), **self._generate_kwargs(request, max_new))
        seed = request.seed if request.seed is not None else self.settings.generation.seed
        errors: list[BaseException] = []

        def _run():
            with self._lock:
                try:
                    if seed is not None:
                        torch.manual_seed(seed)
                    with self._use_adapter(adapter), torch.inference_mode():
                        self.model.generate(**kwargs)
                except BaseException as e:  # re-raised in the consumer
                    logger.exception("generation failed")
                    errors.append(e)
                    streamer.end()

        t0 = time.perf_counter()
        worker = threading.Thread(target=_run, name="chatdoc-generate", daemon=True)
        worker.start()
        text: list[str] = []
        try:
            for piece in streamer:  # the streamer's queue is unbounded: leaving early never blocks generate
                out = stop_buf.feed(piece)
                if out:
                    text.append(out)
                    yield out
                if stop_buf.stopped or cancel.is_set():
                    break
            tail = stop_buf.flush()
            if tail and not cancel.is_set():
                text.append(tail)
                yield tail
        finally:
            done.set()
            worker.join()
        if errors:
            raise errors[0]
        end = time.perf_counter()
        if cancel.is_set():
            reason = "cancel"
        elif stop_buf.stopped or len(steps) < max_new:  # a stop sequence or the end-of-turn token
            reason = "stop"
        else:
            reason = "length"
        handle.result = GenerationResult(
            text="".join(text).strip(),
            prompt_tokens=int(ids.shape[1]),
            new_tokens=len(steps),
            ttft_s=(steps[0] if steps else end) - t0,
            total_s=end - t0,
            stopped_by=reason,
            adapter=adapter,
            decode_loop="transformers",
        )


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


# kind -> factory(settings); chatdoc/llm/__init__.py adds "llamacpp" and "openai" (they build on this module)
BACKENDS: dict[str, Any] = {"transformers": TransformersBackend}


def choose_backend(settings: Settings) -> tuple[str, str]:
    """(kind, why) for ``model.backend``; ``auto`` = llamacpp when there is no CUDA device, llama-cpp-python imports
    and ``model.base`` is a GGUF (the built-in model or a ``.gguf`` file), else transformers."""
    m = settings.model
    if m.backend != "auto":
        return m.backend, f"model.backend: {m.backend}"
    from chatdoc.llm.source import BUILTIN_DEFAULT

    if m.device == "cuda":
        return "transformers", "auto: model.device is cuda"
    if m.device == "auto":
        import torch

        if torch.cuda.is_available():
            return "transformers", "auto: a CUDA device is available"
    if not (m.base == BUILTIN_DEFAULT or str(m.base).endswith(".gguf")):
        return "transformers", f"auto: model.base {m.base!r} is not a GGUF"
    try:
        import llama_cpp
    except Exception as e:  # noqa: BLE001 - missing, or a broken build
        return "transformers", f"auto: llama-cpp-python is not importable ({type(e).__name__})"
    return "llamacpp", f"auto: no CUDA, llama-cpp-python {getattr(llama_cpp, '__version__', '?')}, GGUF base"


_backends: dict[str, Backend] = {}
_backend_lock = threading.Lock()


def get_backend(settings: Settings | None = None, kind: str | None = None) -> Backend:
    """The process-wide backend of ``kind`` (default: the one ``model.backend`` selects), loaded on first use and
    shared by UI, CLI, dialogue and tests. ``kind="transformers"`` for callers that need the torch model."""
    with _backend_lock:
        from chatdoc.config import get_settings

        s = settings or get_settings()
        why = f"asked for {kind}"
        if kind is None:
            kind, why = choose_backend(s)
        if kind not in _backends:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            factory = BACKENDS.get(kind)
            if factory is None:
                raise ValueError(f"model.backend {kind!r} is not one of {sorted(BACKENDS)}")
            b = factory(s)
            b.backend_choice = why
            logger.info("model backend: {} ({})", kind, why)
            _backends[kind] = b
        return _backends[kind]


def reset_backend() -> None:
    with _backend_lock:
        _backends.clear()
