"""Model runtime: base-model resolution, 4-bit loading, LoRA adapters, prompt format, generation."""

from chatdoc.llm.adapters import AdapterError
from chatdoc.llm.backend import Backend, GenerationRequest, GenerationResult, get_backend, reset_backend
from chatdoc.llm.prompt import Turn, render
from chatdoc.llm.source import ModelNotFoundError

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
