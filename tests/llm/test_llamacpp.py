"""The llama.cpp backend (model.backend: llamacpp) on the real built-in GGUF and the shipped adapter.

Skipped where llama-cpp-python is not installed (it compiles llama.cpp: ~10 min on 2 cores).
"""

import json
import shutil
import threading

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from chatdoc.config import load_settings  # noqa: E402
from chatdoc.llm import AdapterError, GenerationRequest, Turn, render  # noqa: E402
from chatdoc.llm.gguf_lora import convert, read_base_info  # noqa: E402
from chatdoc.llm.llamacpp import LlamaCppBackend  # noqa: E402

pytestmark = pytest.mark.slow

SHIPPED = "consult-gemma3-270m"
SYSTEM = "You are a careful clinical assistant taking a history. Ask one question at a time."
PROMPT = render(SYSTEM, [Turn("patient", "I have had a headache for three days.")])

# Greedy agreement with the transformers backend (base model, no adapter): 8 prompts, the first N tokens.
AGREEMENT_TOKENS = 16
AGREEMENT_PROMPTS = [
    render(SYSTEM, [Turn("patient", t)]) for t in (
        "I have had a headache for three days.",
        "My knee has been swollen for a week.",
        "I keep coughing at night and I feel tired.",
        "I have a rash on my arm that itches.",
        "My stomach hurts after I eat.",
        "I feel dizzy when I stand up.",
        "I have a sore throat and a mild fever since Tuesday.",
        "My lower back has been painful since I lifted a box.",
    )
]


@pytest.fixture(scope="module")
def lcpp():
    s = load_settings(model={"backend": "llamacpp", "threads": 2}, adapters={"active": None})
    b = LlamaCppBackend(s)
    yield b
    b.close()


def _greedy(b, adapter, prompt=PROMPT, n=24, stop=()):
    return b.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=n, stop=stop, adapter=adapter))


# ------------------------------------------------------------------------------------------ GGUF LoRA conversion
def test_conversion_round_trip(lcpp, tmp_path):
    import gguf
    from safetensors.numpy import load_file

    d = lcpp.adapters_root / SHIPPED
    cfg = json.loads((d / "adapter_config.json").read_text())
    out = convert(d, tmp_path / "a.gguf", lcpp.base_info)
    layers = cfg["layers_to_transform"] or list(range(lcpp.base_info.n_blocks))
    assert out["tensors"] == 2 * len(cfg["target_modules"]) * len(layers)

    r = gguf.GGUFReader(str(tmp_path / "a.gguf"))
    meta = {k: r.fields[k].contents() for k in ("general.architecture", "general.type", "adapter.type",
                                                 "adapter.lora.alpha")}
    assert meta == {"general.architecture": "gemma3", "general.type": "adapter", "adapter.type": "lora",
                    "adapter.lora.alpha": float(cfg["lora_alpha"])}
    assert len(r.tensors) == out["tensors"]
    base = read_base_info(lcpp.resolved.path).shapes
    st = load_file(str(d / "adapter_model.safetensors"))
    peft_name = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
    for t in r.tensors:
        w, part = t.name.rsplit(".", 1)  # blk.8.attn_q.weight, lora_a
        blk, kind = w.split(".")[1], w.split(".")[2]
        src = st[f"base_model.model.model.layers.{blk}.{peft_name[kind]}.lora_{part[-1].upper()}.weight"]
        ne = tuple(int(x) for x in t.shape)
        if part == "lora_a":  # ggml ne = (in_features, rank)
            assert ne == (base[w][0], cfg["r"])
        else:  # (rank, out_features)
            assert ne == (cfg["r"], base[w][1])
        assert (t.data.reshape(src.shape) == src).all()


@pytest.mark.parametrize("change", [{"use_dora": True}, {"modules_to_save": ["lm_head"]},
                                    {"target_modules": ["q_proj", "embed_tokens"]}, {"alpha_pattern": {"q_proj": 8}}])
def test_conversion_refuses_what_llama_cpp_cannot_run(lcpp, tmp_path, change):
    d = tmp_path / "bad"
    shutil.copytree(lcpp.adapters_root / SHIPPED, d)
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg.update(change)
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdapterError) as e:
        convert(d, tmp_path / "bad.gguf", lcpp.base_info)
    assert "cannot run on llama.cpp" in str(e.value)
    assert not (tmp_path / "bad.gguf").exists()


def test_converted_adapter_is_cached_by_content(lcpp):
    lcpp.load_adapter(SHIPPED)
    path = lcpp.info()["adapter_files"][SHIPPED]
    assert "/gguf-lora/" in path and path.endswith(".gguf") and path.split("/")[-1].startswith(SHIPPED + "-")


# ------------------------------------------------------------------------------------------ generation
def test_streaming_pieces_join_to_the_result(lcpp):
    h = lcpp.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24, stop=(), adapter=None))
    assert not isinstance(h.pieces, list) and iter(h) is h.pieces  # a plain generator
    pieces = list(h)
    assert len(pieces) >= 2
    assert "".join(pieces).strip() == h.result.text
    assert h.result.new_tokens == 24 and h.result.stopped_by == "length"
    assert 0 < h.result.ttft_s <= h.result.total_s
    assert h.result.decode_loop == "llama.cpp"


def test_generation_stops_at_the_stop_sequence(lcpp):
    free = _greedy(lcpp, None, n=32).text
    words = free.split()
    assert len(words) >= 4, free
    stop = " " + words[2]  # a stop sequence that greedy decoding is known to write
    cut = free[: free.index(stop)]
    h = lcpp.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=32, stop=(stop,), adapter=None))
    text = "".join(h)
    assert stop not in text
    assert h.result.text == cut.strip()
    assert h.result.stopped_by == "stop" and h.result.new_tokens < 32
    kept = lcpp.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=32, stop=(stop,),
                                           include_stop=True, adapter=None))
    assert kept.text == (cut + stop).strip()


def test_default_stop_sequences_end_the_doctor_turn(lcpp):
    r = lcpp.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=96, adapter=SHIPPED))
    assert r.text and "Patient:" not in r.text
    assert r.stopped_by in ("stop", "length")


def test_cancellation_stops_early(lcpp):
    cancel = threading.Event()
    h = lcpp.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=200, stop=(), adapter=None), cancel)
    for i, _ in enumerate(h):
        if i == 1:
            cancel.set()
    assert h.result.stopped_by == "cancel" and h.result.new_tokens < 200


def test_sampling_is_reproducible_with_a_seed(lcpp):
    req = GenerationRequest(prompt=PROMPT, greedy=False, temperature=0.9, max_new_tokens=16, stop=(), seed=7,
                            adapter=None)
    a, b = lcpp.generate(req).text, lcpp.generate(req).text
    assert a == b and a


# ------------------------------------------------------------------------------------------ adapters
def test_adapter_changes_output_and_switching_back_restores_base(lcpp):
    base = _greedy(lcpp, None).text
    with_adapter = _greedy(lcpp, SHIPPED).text
    assert with_adapter != base
    assert _greedy(lcpp, None).text == base  # exact restore, no base reload
    assert _greedy(lcpp, SHIPPED).text == with_adapter
    lcpp.activate_adapter(SHIPPED)
    try:
        assert lcpp.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24, stop=())).text == with_adapter
        assert lcpp.info()["active_adapter"] == SHIPPED
    finally:
        lcpp.activate_adapter(None)


def test_missing_adapter_is_an_adapter_error(lcpp):
    with pytest.raises(AdapterError):
        lcpp.stream(GenerationRequest(prompt=PROMPT, adapter="no-such-adapter"))


def test_list_adapters_marks_the_shipped_one_compatible(lcpp):
    a = {x["name"]: x for x in lcpp.list_adapters()}[SHIPPED]
    assert a["ok"] and a["compatible"]


# ------------------------------------------------------------------------------------------ prefix cache
def test_prefix_cache_reuses_the_shared_prefix_and_gives_the_same_output(lcpp):
    first = _greedy(lcpp, SHIPPED, n=16)
    follow = PROMPT + " " + first.text + "\nPatient: It is worse in the morning.\nDoctor:"
    warm = _greedy(lcpp, SHIPPED, prompt=follow, n=16)
    reused = lcpp.last_stats["prefix_reused"]
    assert reused >= first.prompt_tokens - 1  # the previous prompt (and part of its reply) was not evaluated again
    lcpp.llm.n_tokens = 0  # cold: evaluate the whole prompt
    cold = _greedy(lcpp, SHIPPED, prompt=follow, n=16)
    assert lcpp.last_stats["prefix_reused"] == 0
    assert cold.text == warm.text


# ------------------------------------------------------------------------------------------ vs transformers
def test_greedy_agreement_with_the_transformers_backend(lcpp, backend):
    """Both backends greedy on the base model, the first AGREEMENT_TOKENS tokens of 8 prompts.

    The weights are not the same: llama.cpp runs the GGUF's Q4_K_M / Q5_0 blocks, transformers runs an nf4
    re-quantization of their dequantized values (a second rounding). Logits differ by a little, so wherever
    the top two candidates are close greedy decoding can take the other branch, and after the first
    different token the texts continue differently. Agreement is therefore measured as the common prefix
    of the token sequences (re-tokenized with the HF tokenizer), and the floor is set to what such a small
    perturbation allows: most prompts agree on their first tokens, and on average at least a quarter of the
    first 16 tokens is a common prefix.
    """
    tok = backend.tokenizer
    prefixes, forced = [], []
    for p in AGREEMENT_PROMPTS:
        assert lcpp.tokenize(p) == tok(p)["input_ids"]  # same prompt tokens in both
        a = backend.generate(GenerationRequest(prompt=p, greedy=True, max_new_tokens=AGREEMENT_TOKENS, stop=(),
                                               adapter=None)).text
        b = lcpp.generate(GenerationRequest(prompt=p, greedy=True, max_new_tokens=AGREEMENT_TOKENS, stop=(),
                                            adapter=None)).text
        ta, tb = tok(a, add_special_tokens=False)["input_ids"], tok(b, add_special_tokens=False)["input_ids"]
        n = 0
        while n < min(len(ta), len(tb), AGREEMENT_TOKENS) and ta[n] == tb[n]:
            n += 1
        prefixes.append(n)
        forced.append(_teacher_forced_agreement(lcpp, p, ta))
    mean = sum(prefixes) / len(prefixes) / AGREEMENT_TOKENS
    tf = sum(forced) / len(forced)
    print(f"\ngreedy common-prefix tokens per prompt (of {AGREEMENT_TOKENS}): {prefixes}; mean fraction {mean:.2f}; "
          f"teacher-forced per-token agreement {tf:.2f} ({[round(x, 2) for x in forced]})")
    assert sum(n >= 1 for n in prefixes) >= 7
    assert mean >= 0.25
    assert tf >= 0.65


def _teacher_forced_agreement(lcpp, prompt, target):
    """Share of positions where llama.cpp's greedy choice (same repetition penalty) is transformers' token,
    feeding transformers' tokens: one early near-tie no longer decides every later position."""
    import numpy as np

    from chatdoc.llm.llamacpp import sample

    g = lcpp.settings.generation
    params = {"greedy": True, "repetition_penalty": g.repetition_penalty}
    ids = lcpp.tokenize(prompt)
    with lcpp._lock:
        lcpp._set_lora(None)
        lcpp.llm.n_tokens = 0
        lcpp.llm.eval(ids)
        seen, hits = set(ids), 0
        for t in target:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(lcpp.llm.ctx, -1), shape=(lcpp.n_vocab,))
            hits += sample(logits, np.array(sorted(seen), dtype=np.int64), params) == t
            seen.add(t)
            lcpp.llm.eval([t])
    return hits / max(1, len(target))


# ------------------------------------------------------------------------------------------ wiring
def test_get_backend_returns_llamacpp_when_configured(monkeypatch):
    from chatdoc.llm import backend as backend_mod

    monkeypatch.setattr(backend_mod, "_backends", {})  # the process-wide ones (if any) are left alone
    b = backend_mod.get_backend(load_settings(model={"backend": "llamacpp", "threads": 2}, adapters={"active": SHIPPED}))
    try:
        assert isinstance(b, LlamaCppBackend)
        assert b.info()["backend"] == "llamacpp" and b.active_adapter == SHIPPED and b.adapter_error is None
        assert b.info()["backend_choice"] == "model.backend: llamacpp"
    finally:
        b.close()


def test_auto_picks_llamacpp_on_a_cpu_machine_with_a_gguf_base(monkeypatch):
    """model.backend: auto (the default) = llama.cpp here (no CUDA, llama-cpp-python importable, built-in GGUF);
    transformers on CUDA, for a transformers checkpoint, or without llama-cpp-python."""
    import sys

    import torch

    from chatdoc.llm.backend import choose_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_settings().model.backend == "auto"
    kind, why = choose_backend(load_settings())
    assert kind == "llamacpp" and "no CUDA" in why
    assert choose_backend(load_settings(model={"base": "/models/x.gguf"}))[0] == "llamacpp"
    assert choose_backend(load_settings(model={"base": "/models/hf-checkpoint"}))[0] == "transformers"
    assert choose_backend(load_settings(model={"device": "cuda"}))[0] == "transformers"
    assert choose_backend(load_settings(model={"backend": "transformers"})) == ("transformers", "model.backend: transformers")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_backend(load_settings())[0] == "transformers"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    kind, why = choose_backend(load_settings())
    assert kind == "transformers" and "not importable" in why


def test_get_backend_keeps_one_backend_per_kind(monkeypatch, backend):
    from chatdoc.llm import backend as backend_mod

    monkeypatch.setattr(backend_mod, "_backends", {"transformers": backend})
    assert backend_mod.get_backend(load_settings(model={"backend": "llamacpp"}), kind="transformers") is backend
    assert backend.info()["backend"] == "transformers"


def test_without_llama_cpp_the_error_says_how_to_install(monkeypatch):
    import sys

    from chatdoc.llm.llamacpp import BackendUnavailableError, import_llama_cpp

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install llama-cpp-python==0\.3\.36"):
        import_llama_cpp()
