"""A randomly initialised LoRA adapter for benchmarks and tests (tooling: training writes real ones).

The adapter is built on a separate fp32 copy of the base (never on the shared backend's model, which
peft would modify in place), saved with peft and given a ``card.yaml`` like a trained one.
"""

from __future__ import annotations

from pathlib import Path

from chatdoc.llm.source import ResolvedModel
from chatdoc.train.sft import write_card


def create_random_adapter(
    base: ResolvedModel,
    out_dir: Path,
    *,
    r: int = 8,
    scale: float = 0.05,
    seed: int = 0,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
) -> Path:
    """A LoRA with non-zero random A and B (so it changes outputs), saved as a chatdoc adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32, local_files_only=True)
    cfg = LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(target_modules), init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn_like(p) * scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir))
    write_card(
        out_dir,
        out_dir.name,
        base,
        description=f"random LoRA (r={r}, scale={scale}, seed={seed}) for tests and benchmarks; not trained",
        hyperparameters={"r": r, "lora_alpha": 2 * r, "target_modules": list(target_modules)},
    )
    return out_dir
