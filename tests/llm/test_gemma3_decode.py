"""Our own Gemma 3 generation loop (llm/gemma3_decode.py) against transformers' ``generate`` on the same weights.

Fast tests use a tiny random Gemma 3 (sliding window of 6, so prompts cross it); slow ones the real model and
the shipped adapter through the shared backend.
"""

import pytest
import torch

from chatdoc.llm import GenerationRequest, Turn, cpu_decode, gemma3_decode, render

SYSTEM = "You are a careful clinical assistant taking a history. Ask one question at a time."


def _tiny(window=6, seed=0):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, tie_word_embeddings=True, sliding_window=window,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"], eos_token_id=None,
    )
    m = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name:  # Gemma's (1 + w) scales: make them matter
                p.copy_(torch.randn_like(p) * 0.3)
    cpu_decode.apply(m, "fbgemm", "cpu")
    return m


def _hf_greedy(m, ids, n):
    with torch.inference_mode():
        return m.generate(input_ids=ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None,
                          pad_token_id=0)


def _lora(m, **kw):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, **kw)
    torch.manual_seed(1)
    pm = get_peft_model(m, cfg).eval()
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn_like(p) * 0.2)
    return pm


# ---------------------------------------------------------------- tiny model (fast)
def test_greedy_tokens_and_logits_match_transformers_across_the_sliding_window():
    m = _tiny()
    dec = gemma3_decode.build(m, 64)
    assert dec is not None
    ids = torch.randint(0, 256, (1, 15), generator=torch.Generator().manual_seed(3))
    ref = _hf_greedy(m, ids, 12)
    assert torch.equal(dec.generate(ids, 12, eos_token_id=[]), ref)  # 27 positions, window 6: both kinds of layer
    with torch.inference_mode():
        full = m(input_ids=ref).logits[0]
        steps = [dec.forward(ref[0, :15], 0, [])] + [dec.forward(ref[0, j : j + 1], j, []) for j in range(15, 26)]
    for j, got in zip(range(14, 26), steps):
        top = full[j].topk(16).indices  # the head is exact on its top-64; compare where it is exact
        assert torch.allclose(got[top], full[j][top], atol=1e-4), j


def test_lora_on_every_projection_matches_peft():
    m = _tiny()
    dec = gemma3_decode.build(m, 64)  # built before peft wraps the modules, as in the backend
    pm = _lora(m, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
               layers_to_transform=[1, 2])
    ids = torch.randint(0, 256, (1, 10), generator=torch.Generator().manual_seed(4))
    lora = dec.lora_for(pm, "default")
    assert lora and lora[0]["qkv"] is None and lora[1]["qkv"] is not None
    ref = _hf_greedy(pm, ids, 10)
    assert torch.equal(dec.generate(ids, 10, eos_token_id=[], lora=lora), ref)
    with pm.disable_adapter():
        base = _hf_greedy(pm, ids, 10)
    assert not torch.equal(base, ref)  # the adapter changes the text, and the base stays reachable
    assert torch.equal(dec.generate(ids, 10, eos_token_id=[], lora=dec.lora_for(pm, None)), base)


def test_partial_targets_fuse_with_zero_blocks():
    m = _tiny()
    dec = gemma3_decode.build(m, 64)
    pm = _lora(m, target_modules=["v_proj", "up_proj"])
    ids = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(5))
    assert torch.equal(dec.generate(ids, 8, eos_token_id=[], lora=dec.lora_for(pm, "default")), _hf_greedy(pm, ids, 8))


@pytest.mark.parametrize("kw", [
    {"target_modules": ["q_proj"], "use_dora": True},
    {"target_modules": ["q_proj", "lm_head"]},
    {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]},
])
def test_adapters_it_does_not_cover_fall_back(kw):
    m = _tiny()
    dec = gemma3_decode.build(m, 64)
    assert dec.lora_for(_lora(m, **kw), "default") is None


def test_other_architectures_are_not_built():
    from transformers import LlamaConfig, LlamaForCausalLM

    m = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=1)).eval()
    cpu_decode.apply(m, "fbgemm", "cpu")
    assert gemma3_decode.build(m, 32) is None


def test_sampling_draws_from_the_same_distribution_as_transformers():
    from transformers.generation import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    scores = torch.randn(1, 4096, generator=torch.Generator().manual_seed(0)) * 3
    ids = torch.zeros(1, 1, dtype=torch.long)
    hf = LogitsProcessorList([TemperatureLogitsWarper(0.7), TopKLogitsWarper(50), TopPLogitsWarper(0.9)])
    want = torch.softmax(hf(ids, scores.clone()), dim=-1)
    idx, probs = gemma3_decode.candidates(scores, ids, LogitsProcessorList([TemperatureLogitsWarper(0.7),
                                                                             TopPLogitsWarper(0.9)]), 50)
    got = torch.zeros_like(want).scatter_(-1, idx, probs)
    assert torch.allclose(got, want, atol=1e-6) and 1 < int((got > 0).sum()) < 50


def test_sampling_is_seeded_and_top_k_1_is_greedy():
    m = _tiny()
    dec = gemma3_decode.build(m, 64)
    ids = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(6))

    def sample(seed, **kw):
        torch.manual_seed(seed)
        return dec.generate(ids, 10, eos_token_id=[], do_sample=True, temperature=1.0, **kw)

    assert torch.equal(sample(1, top_k=50), sample(1, top_k=50))
    assert any(not torch.equal(sample(1, top_k=50), sample(s, top_k=50)) for s in (2, 3, 4))
    assert torch.equal(sample(9, top_k=1), dec.generate(ids, 10, eos_token_id=[]))


def test_streamer_stopping_criteria_and_eos_follow_generate():
    from transformers import StoppingCriteria

    m = _tiny()
    dec = gemma3_decode.build(m, 64)
    ids = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(7))
    greedy = dec.generate(ids, 10, eos_token_id=[])[0, 8:].tolist()

    class Puts:
        def __init__(self):
            self.got, self.ended = [], False

        def put(self, v):
            self.got.append(v.reshape(-1).tolist())

        def end(self):
            self.ended = True

    class After(StoppingCriteria):
        def __init__(self, n):
            self.n, self.calls = n, 0

        def __call__(self, input_ids, scores, **kw):
            self.calls += 1
            return input_ids.shape[1] >= 8 + self.n

    s, never, stop3 = Puts(), After(99), After(3)
    out = dec.generate(ids, 10, streamer=s, stopping_criteria=[stop3, never], eos_token_id=[])
    assert out[0, 8:].tolist() == greedy[:3] and s.ended
    assert s.got[0] == ids[0].tolist() and [t for (t,) in s.got[1:]] == greedy[:3]  # prompt first, as generate
    assert never.calls == stop3.calls == 3  # every criterion sees every token
    eos = greedy[4]
    first = greedy.index(eos)
    assert dec.generate(ids, 10, eos_token_id=eos)[0, 8:].tolist() == greedy[: first + 1]


# ---------------------------------------------------------------- real model (slow)
def _prompt(text):
    return render(SYSTEM, [Turn("patient", text)])


def _gen(b, prompt, adapter=..., n=20):
    return b.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=n, stop=(), adapter=adapter))


@pytest.mark.slow
def test_backend_uses_the_own_loop_and_matches_generate(backend):
    ck = backend.info()["cpu_kernels"]
    assert ck["decode_loop"] == "chatdoc-gemma3"
    if ck["nf4_kernel_layers"] == 0:
        pytest.skip("nf4 kernel unavailable here (no AVX2 or gcc): covered by the fp16 test below")
    assert ck["nf4_kernel_layers"] == len(backend.base_model.model.layers)
    long_history = [Turn("patient" if i % 2 == 0 else "doctor", t) for i, t in enumerate(
        ["I have had chest tightness on and off for two weeks, mostly when I climb the stairs at work."]
        + ["Can you tell me more about when it happens and how long each episode lasts?",
           "It lasts a few minutes and goes away when I rest, sometimes with sweating and feeling sick."] * 15)]
    long_prompt = render(SYSTEM, long_history)
    assert backend.count_tokens(long_prompt) > 600  # beyond the 512-token sliding window
    prompts = [_prompt("My knee has been swollen for a week."), long_prompt]
    for adapter in (None, backend.active_adapter or "consult-gemma3-270m"):
        own = [_gen(backend, p, adapter) for p in prompts]
        assert all(r.decode_loop == "chatdoc-gemma3" for r in own)
        decoder, backend.decoder = backend.decoder, None
        try:
            ref = [_gen(backend, p, adapter) for p in prompts]
        finally:
            backend.decoder = decoder
        assert all(r.decode_loop == "transformers" for r in ref)
        assert [r.text for r in own] == [r.text for r in ref], adapter
        assert [r.new_tokens for r in own] == [r.new_tokens for r in ref]


@pytest.mark.slow
def test_one_token_steps_on_fbgemm_give_the_same_text(backend):
    """Without the nf4 kernel (no gcc/AVX2, or model.nf4_kernel: false) decode steps use the fp16 packs."""
    fp16 = gemma3_decode.build(backend.base_model, 1024, None)
    assert fp16.nf4_layers == 0
    prompt = _prompt("I keep coughing at night and feel short of breath.")
    own = _gen(backend, prompt, None, 24)
    decoder, backend.decoder = backend.decoder, fp16
    try:
        assert _gen(backend, prompt, None, 24).text == own.text
    finally:
        backend.decoder = decoder


def test_decode_loop_setting_turns_it_off(monkeypatch):
    from chatdoc.config import load_settings

    monkeypatch.setenv("CHATDOC_MODEL_DECODE_LOOP", "transformers")
    assert load_settings().model.decode_loop == "transformers"
    monkeypatch.setenv("CHATDOC_MODEL_NF4_KERNEL", "false")
    assert load_settings().model.nf4_kernel is False
    monkeypatch.setenv("CHATDOC_MODEL_DECODE_LOOP", "fastest")
    with pytest.raises(Exception, match="decode_loop"):
        load_settings()
