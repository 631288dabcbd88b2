"""Model runtime: base-model resolution, 4-bit loading, LoRA adapters, prompt format, generation."""

from chatdoc.llm import backend as _backend_module
from chatdoc.llm.adapters import AdapterError
from chatdoc.llm.backend import (
    Backend,
    EngineUnavailable,
    GenerationRequest,
    GenerationResult,
    get_backend,
    reset_backend,
)
from chatdoc.llm.prompt import Turn, render
from chatdoc.llm.source import ModelNotFoundError


def _llamacpp_backend(settings):
    """``model.backend: llamacpp`` (imported on first use: llama-cpp-python is optional)."""
    from chatdoc.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(settings)


def _openai_backend(settings):
    """``model.backend: openai``: an OpenAI-compatible server (llama.cpp server, vLLM)."""
    from chatdoc.llm.remote import RemoteBackend

    return RemoteBackend(settings)


# registered here rather than in backend.py: llamacpp.py and remote.py build on backend.py's types (no cycle)
_backend_module.BACKENDS.setdefault("llamacpp", _llamacpp_backend)
_backend_module.BACKENDS.setdefault("openai", _openai_backend)

__all__ = [
    "AdapterError",
    "Backend",
    "EngineUnavailable",
    "GenerationRequest",
    "GenerationResult",
    "ModelNotFoundError",
    "Turn",
    "get_backend",
    "render",
    "reset_backend",
]
