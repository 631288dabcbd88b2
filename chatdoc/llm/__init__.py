"""Model runtime: base-model resolution, 4-bit loading, LoRA adapters, prompt format, generation."""

from chatdoc.llm import backend as _backend_module
from chatdoc.llm.adapters import AdapterError
from chatdoc.llm.backend import Backend, GenerationRequest, GenerationResult, get_backend, reset_backend
from chatdoc.llm.prompt import Turn, render
from chatdoc.llm.source import ModelNotFoundError


def _llamacpp_backend(settings):
    """``model.backend: llamacpp`` (imported on first use: llama-cpp-python is optional)."""
    from chatdoc.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(settings)


# registered here rather than in backend.py: llamacpp.py builds on backend.py's types (no import cycle)
_backend_module.BACKENDS.setdefault("llamacpp", _llamacpp_backend)

__all__ = [
    "AdapterError",
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "ModelNotFoundError",
    "Turn",
    "get_backend",
    "render",
    "reset_backend",
]
