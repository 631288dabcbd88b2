"""The real default model: nf4 loading, deterministic generation, streaming, stops, cancellation."""

import threading

import pytest

from chatdoc.llm import GenerationRequest, Turn, render
from chatdoc.llm.backend import _StopBuffer

pytestmark = pytest.mark.slow

PROMPT = render(
    "You are a careful clinical assistant taking a history. Ask one question at a time.",
    [Turn("patient", "I have had a headache for three days.")],
)


def test_default_model_loads_in_nf4(backend):
    import bitsandbytes as bnb

    info = backend.info()
    assert info["quantization"]["in_effect"] == "nf4"
    assert info["source_kind"] == "builtin-gguf"
    q_layers = [m for m in backend.base_model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(q_layers) > 50
    assert q_layers[0].weight.quant_state.quant_type == "nf4"
    # the materialized cache holds safetensors + tokenizer and records the GGUF checksum
    assert (backend.resolved.path / "model.safetensors").exists()
    assert len(info["checksum"]) == 64


def test_greedy_generation_is_deterministic_and_non_empty(backend):
    req = GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24)
    a = backend.generate(req)
    b = backend.generate(req)
    assert a.text.strip()
    assert a.text == b.text
    assert "Patient:" not in a.text
    assert 0 < a.new_tokens <= 24


def test_streaming_yields_pieces_that_join_to_the_result(backend):
    h = backend.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24, stop=()))
    pieces = list(h)
    assert len(pieces) >= 2
    assert "".join(pieces).strip() == h.result.text
    assert h.result.ttft_s <= h.result.total_s


def test_cancellation_stops_early(backend):
    cancel = threading.Event()
    h = backend.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=200, stop=()), cancel)
    for i, _ in enumerate(h):
        if i == 1:
            cancel.set()
    assert h.result.stopped_by == "cancel"
    assert h.result.new_tokens < 200


def test_stop_buffer_cuts_at_stop_sequence_split_across_pieces():
    sb = _StopBuffer(("\nPatient:",))
    out = "".join(sb.feed(p) for p in ["How long ", "has it hurt?\nPat", "ient: a week"]) + sb.flush()
    assert out == "How long has it hurt?"
    assert sb.stopped


def test_stop_buffer_passes_text_without_stop():
    sb = _StopBuffer(("\nPatient:",))
    out = "".join(sb.feed(p) for p in ["Does ", "it hurt?"]) + sb.flush()
    assert out == "Does it hurt?"


def test_stop_buffer_can_keep_the_stop_sequence():
    sb = _StopBuffer(("?", "\n"), include=True)
    out = "".join(sb.feed(p) for p in ["Where does ", "it hurt? And", " why?"]) + sb.flush()
    assert out == "Where does it hurt?"


def test_int8_is_selectable_and_reported_from_the_layers(backend):
    import bitsandbytes as bnb

    from chatdoc.config import load_settings
    from chatdoc.llm.backend import TransformersBackend

    b8 = TransformersBackend(load_settings(model={"quantization": "int8"}, adapters={"active": None}))
    try:
        assert b8.info()["quantization"]["in_effect"] == "int8"
        assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in b8.base_model.modules())
        out = b8.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=8))
        assert out.new_tokens > 0
    finally:
        del b8
