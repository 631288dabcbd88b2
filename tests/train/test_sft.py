"""Real tiny training runs: loss mask, target-only loss == full loss, adapter written + activated, resume."""

import math

import pytest
import yaml

from chatdoc.config import load_settings
from chatdoc.llm.adapters import load_checked, read_card
from chatdoc.train.data import build_dataset
from chatdoc.train.sft import (
    IGNORE,
    TrainConfig,
    collate,
    full_loss,
    latest_checkpoint,
    load_trainable,
    pack_samples,
    target_loss,
    train,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dataset(tiny_jsonl_session, data_dir, count_tokens):
    return build_dataset(data_dir, [], count_tokens, jsonl=[tiny_jsonl_session], max_seq_len=256, val_frac=0.0)


@pytest.fixture(scope="module")
def fp32_model(train_settings):
    import torch

    from chatdoc.llm.source import resolve

    torch.manual_seed(0)
    r = resolve(train_settings.model.base, train_settings.path(train_settings.model.cache_dir))
    model, tok = load_trainable(r, TrainConfig(name="t", lora_r=4, lora_alpha=8, lora_dropout=0.0), "cpu")
    with torch.no_grad():  # non-zero B so the adapter takes part in both losses
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.01)
    return model, tok


def test_loss_mask_covers_only_doctor_tokens(tiny_dataset, tokenizer):
    samples = tiny_dataset.split("train")
    packed = pack_samples(samples, tokenizer, 256)
    # conversations a, b (two doctor turns each) pack into one sequence each: prefixes verified by tokens
    assert len(packed) == 4 and sorted(len(p.sample_ids) for p in packed) == [1, 2, 2, 2]
    by_id = {s.id: s for s in samples}
    for p in packed:
        targets = [t for t, lab in zip(p.input_ids, p.labels) if lab != IGNORE]
        assert targets == [lab for lab in p.labels if lab != IGNORE]
        expected = "".join(by_id[i].completion for i in p.sample_ids)
        assert tokenizer.decode(targets) == expected  # exactly the doctor words, nothing else
        last = by_id[p.sample_ids[-1]]
        assert tokenizer.decode(p.input_ids, skip_special_tokens=True) == last.prompt + last.completion
    # unpacked: one sequence per doctor turn, prompt tokens == runtime tokenization of the prompt
    single = pack_samples(samples, tokenizer, 256, pack=False)
    assert len(single) == len(samples)
    for p, s in zip(sorted(single, key=lambda p: p.sample_ids[0]), sorted(samples, key=lambda s: s.id)):
        n_prompt = p.labels.index(next(x for x in p.labels if x != IGNORE))
        assert p.input_ids[:n_prompt] == tokenizer(s.prompt)["input_ids"]


def test_target_only_loss_equals_full_logits_loss(fp32_model, tiny_dataset):
    import torch

    model, tok = fp32_model
    packed = pack_samples(tiny_dataset.split("train"), tok, 256)
    batch = collate(packed, tok.pad_token_id)  # padded, several loss spans per row
    model.eval()
    with torch.no_grad():
        fast, n_fast = target_loss(model, batch, weighted=False)
        full, n_full = full_loss(model, batch)
    assert n_fast == n_full > 20
    assert math.isclose(float(fast), float(full), rel_tol=1e-4, abs_tol=1e-4)
    # gradients agree too
    model.train()
    for n, p in model.named_parameters():
        p.grad = None
    target_loss(model, batch, weighted=False)[0].backward()
    g_fast = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for p in model.parameters():
        p.grad = None
    full_loss(model, batch)[0].backward()
    for n, p in model.named_parameters():
        if n in g_fast:
            assert torch.allclose(g_fast[n], p.grad, atol=1e-5, rtol=1e-3), n
    model.eval()


def test_train_writes_loadable_adapter_and_resumes(data_dir, tmp_path, tiny_jsonl_session, backend):
    settings = load_settings(train={"output_dir": str(tmp_path / "adapters"), "runs_dir": str(tmp_path / "runs")})
    cfg = TrainConfig(name="tiny-sft", sources=[], jsonl=[str(tiny_jsonl_session)], val_frac=0.0, max_seq_len=256,
                      lora_r=4, lora_alpha=8, batch_size=2, grad_accum=1, max_steps=2, save_every=1,
                      val_max_sequences=2, threads=1, lr=1e-3, seed=3)
    first = train(cfg, settings, progress=False, command="pytest")
    assert first["steps"] == 2 and first["resumed_from"] is None
    run_dir = tmp_path / "runs" / "tiny-sft"
    assert latest_checkpoint(run_dir).name == "step-000002"

    cfg.max_steps = 4
    second = train(cfg, settings, resume=True, progress=False, command="pytest --resume")
    assert second["resumed_from"] == 2 and second["steps"] == 4
    log = [yaml.safe_load(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps_after_resume = [r["step"] for r in log if r["event"] == "step"][2:]
    assert steps_after_resume == [3, 4]  # continued, not restarted

    out = tmp_path / "adapters" / "tiny-sft"
    card = read_card(out)
    assert card.base_model_checksum == backend.resolved.checksum
    sources = {d["source"]: d for d in card.data_sources}
    assert sources["jsonl"]["train_samples"] == 7 and sources["mts"]["train_samples"] == 0  # MTS = eval only
    assert card.hyperparameters["lora_r"] == 4 and card.model_extra["steps"] == 4
    assert card.metrics["train_loss"] > 0 and card.command == "pytest --resume"
    load_checked(tmp_path / "adapters", "tiny-sft", backend.resolved.checksum)
    assert out.stat().st_size and (out / "adapter_model.safetensors").stat().st_size < 5_000_000

    # the runtime activates it unchanged
    from chatdoc.llm import GenerationRequest, Turn, render

    old_root, old_active = backend.adapters_root, backend.active_adapter
    backend.adapters_root = tmp_path / "adapters"
    try:
        backend.activate_adapter("tiny-sft")
        assert backend.active_adapter == "tiny-sft"
        prompt = render("You are a doctor.", [Turn("patient", "I have a cough.")])
        r = backend.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=4))
        assert r.adapter == "tiny-sft"
    finally:
        backend.unload_adapter("tiny-sft")
        backend.adapters_root = old_root
        backend.activate_adapter(old_active)

    # without --resume/--overwrite an existing adapter is refused
    from chatdoc.train.sft import TrainError

    with pytest.raises(TrainError, match="already exists"):
        train(cfg, settings, progress=False)
