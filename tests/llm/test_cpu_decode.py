"""The CPU fast path (llm/cpu_decode.py) against the plain bitsandbytes nf4 path.

The real model is the shared session backend (fast path on by default); the plain reference is the
same model with our forwards taken off for a moment, so no second copy is loaded.
"""

import contextlib

import bitsandbytes as bnb
import pytest
import torch

from chatdoc.config import load_settings
from chatdoc.llm import GenerationRequest, Turn, cpu_decode, render
from chatdoc.tools.lora import create_random_adapter

SYSTEM = "You are a careful clinical assistant taking a history. Ask one question at a time."
PROMPTS = [
    render(SYSTEM, [Turn("patient", t)])
    for t in (
        "I have had a headache for three days.",
        "My knee has been swollen for a week.",
        "I keep coughing at night and feel short of breath.",
        "I feel dizzy when I stand up quickly.",
    )
]


def _is_fast(mod) -> bool:
    return getattr(mod.__dict__.get("forward"), "chatdoc_fast", False)


@contextlib.contextmanager
def plain_path(b):
    """The plain bitsandbytes path on the same model, then the fast forwards back (tests run one at a time)."""
    saved = {m: m.__dict__["forward"] for m in b.base_model.modules() if _is_fast(m)}
    assert saved
    for m in saved:
        del m.forward
    decoder, b.decoder = b.decoder, None  # our generation loop runs the packed weights itself
    try:
        yield
    finally:
        b.decoder = decoder
        for m, f in saved.items():
            m.forward = f


def _next_logits(b, prompt):
    ids = b.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with b._lock, b._use_adapter(None), torch.inference_mode():
        return b.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()


def _greedy(b, prompt, adapter=None, n=16):
    return b.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=n, stop=(), adapter=adapter)).text


def _tiny_gemma():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, tie_word_embeddings=True,
    )
    return Gemma3ForCausalLM(cfg).eval()


# ---------------------------------------------------------------- real model (slow)
@pytest.mark.slow
def test_fast_path_is_the_default_on_cpu_and_reported(backend):
    ck = backend.info()["cpu_kernels"]
    assert ck["in_effect"] == "fbgemm", ck
    q_layers = [m for m in backend.base_model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert ck["linear_layers"] == len(q_layers) > 50
    assert all(_is_fast(m) for m in q_layers)  # modules stay Linear4bit (nf4 reported), only forward changes
    assert backend.info()["quantization"]["in_effect"] == "nf4"
    head, emb = backend.base_model.get_output_embeddings(), backend.base_model.get_input_embeddings()
    assert _is_fast(head) and not _is_fast(emb)
    assert head.weight is emb.weight and emb.weight.dtype == torch.float32  # tied embedding kept intact
    norms = [m for m in backend.base_model.modules() if type(m).__name__ == "Gemma3RMSNorm"]
    assert ck["rms_norms_fused"] == len(norms) > 0 and all(_is_fast(m) for m in norms)
    assert ck["extra_bytes"] > 0 and ck["convert_s"] >= 0


@pytest.mark.slow
def test_next_token_logits_match_the_plain_path(backend):
    fast = [_next_logits(backend, p) for p in PROMPTS]
    with plain_path(backend):
        ref = [_next_logits(backend, p) for p in PROMPTS]
    for f, r in zip(fast, ref):
        assert f.argmax() == r.argmax()
        assert set(f.topk(10).indices.tolist()) == set(r.topk(10).indices.tolist())
        top = r.topk(16).indices  # recomputed exactly in fp32: only fp16-weight rounding is left
        rel = ((f[top] - r[top]).abs().max() / r.abs().max()).item()
        # ~7e-5 on the AVX2 machines this was written on; 2.7e-3 on an AVX-512 EPYC (2026-12-01), where the
        # plain bitsandbytes path's own kernels differ. Same argmax and top-10 either way (asserted above).
        assert rel < 5e-3, f"top-16 logits max relative error {rel:.1e}"


@pytest.mark.slow
def test_greedy_text_matches_the_plain_path(backend):
    fast = [_greedy(backend, p) for p in PROMPTS[:2]]
    with plain_path(backend):
        assert [_greedy(backend, p) for p in PROMPTS[:2]] == fast


@pytest.mark.slow
def test_adapters_work_and_swap_on_the_fast_path(backend, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    create_random_adapter(backend.resolved, root / "rand-fast", seed=3)
    old, backend.adapters_root = backend.adapters_root, root
    try:
        p = PROMPTS[0]
        base = _greedy(backend, p)
        with_a = _greedy(backend, p, "rand-fast")
        assert with_a != base  # the LoRA delta is still added on top of the fast base layer
        lora = [m for m in backend.model.modules() if hasattr(m, "base_layer") and hasattr(m, "lora_A")]
        assert lora and all(_is_fast(m.base_layer) for m in lora)
        with plain_path(backend):
            assert _greedy(backend, p, "rand-fast") == with_a
        assert _greedy(backend, p) == base  # switching back to the base restores it exactly
    finally:
        backend.unload_adapter("rand-fast")
        backend.adapters_root = old


@pytest.mark.slow
def test_autograd_takes_the_original_forward(backend):
    mod = next(m for m in backend.base_model.modules() if isinstance(m, bnb.nn.Linear4bit))
    x = torch.randn(1, mod.in_features)
    orig = type(mod).forward(mod, x).detach()
    with torch.enable_grad():
        assert torch.equal(mod(x).detach(), orig)
    with torch.no_grad():
        fast = mod(x)
    # On AVX512-BF16 CPUs bitsandbytes' own CPU kernel computes in bf16 (eps 7.8e-3): measured worst error
    # 5.2e-3 of the output's largest value over 40 layers (2026-12-01); fp16 fast vs fp32 plain elsewhere ~1e-4.
    assert not torch.equal(fast, orig)
    assert (fast - orig).abs().max() <= 2e-2 * orig.abs().max()


# ---------------------------------------------------------------- dispatch (tiny random model, fast)
def test_plain_setting_and_other_devices_leave_modules_untouched(monkeypatch):
    m = _tiny_gemma()
    assert cpu_decode.apply(m, "plain", "cpu") == {"requested": "plain", "in_effect": "plain"}
    assert cpu_decode.apply(m, "fbgemm", "cuda")["in_effect"] == "plain"
    assert not any("forward" in mod.__dict__ for mod in m.modules())
    monkeypatch.setenv("CHATDOC_MODEL_CPU_KERNELS", "plain")
    assert load_settings().model.cpu_kernels == "plain"


def test_fast_path_on_an_unquantized_model_keeps_greedy_and_restores():
    m = _tiny_gemma()
    ids = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        ref = m(input_ids=ids).logits
        ck = cpu_decode.apply(m, "fbgemm", "cpu")
        assert ck["in_effect"] == "fbgemm" and ck["linear_layers"] == 2 * 7
        fast = m(input_ids=ids).logits
        assert torch.equal(fast.argmax(-1), ref.argmax(-1))  # every position, not only the last
        assert cpu_decode.restore(m) == 2 * 7 + 1 + ck["rms_norms_fused"]
        assert torch.equal(m(input_ids=ids).logits, ref)


def test_a_failed_conversion_falls_back_to_plain(monkeypatch):
    def fail(*a, **kw):  # after the linears were converted: the partial conversion must be undone
        raise RuntimeError("boom")

    monkeypatch.setattr(cpu_decode, "_head_forward", fail)
    m = _tiny_gemma()
    ck = cpu_decode.apply(m, "fbgemm", "cpu")
    assert ck["in_effect"] == "plain" and "boom" in ck["error"]
    assert not any("forward" in mod.__dict__ for mod in m.modules())
