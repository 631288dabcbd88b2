"""Supervised fine-tuning of a LoRA adapter on doctor turns (a plain PyTorch loop, no trl).

Why a custom loop: the base model's 262k-entry vocabulary makes the LM head (640 x 262144) cost more
than the whole transformer body. :func:`target_loss` runs the body, keeps only the hidden states at
positions that predict a doctor token, and applies the LM head + cross-entropy there. On top:

* prefix packing (:func:`pack_samples`): consecutive doctor-turn samples of one conversation whose
  prompt starts with the previous sample's full token sequence are trained as ONE sequence with
  several completion spans. Causal attention makes this exactly the per-sample loss, without
  recomputing the shared context; it is checked token by token, never assumed;
* length-bucketed batches (little padding), ``torch.set_num_threads``.

Devices: with CUDA the base is loaded 4-bit (bitsandbytes nf4, QLoRA); on CPU LoRA trains on the fp32
materialized base. Checkpoints (adapter + optimizer + scheduler + step) go to
``train.runs_dir/<name>/checkpoints/`` and ``--resume`` continues from the latest.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatdoc.log import logger
from chatdoc.train.data import Dataset, Sample

IGNORE = -100


class TrainError(RuntimeError):
    """Training cannot start or continue; the message says why."""


@dataclass
class TrainConfig:
    name: str
    sources: list[str] = field(default_factory=lambda: ["mts", "aci", "chatdoctor"])
    jsonl: list[str] = field(default_factory=list)
    chatdoctor_limit: int | None = 400
    max_seq_len: int = 448
    val_frac: float = 0.05
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    lr: float = 2e-4
    warmup_frac: float = 0.06
    epochs: float = 1.0
    max_steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget: the LR decays by time and training stops at it
    lora_layers: int | None = None  # adapt only the top N transformer layers (None = all): no backward below
    batch_size: int = 4
    grad_accum: int = 2
    question_weight: float = 1.0
    seed: int = 0
    threads: int = 0
    eval_every: int = 100
    save_every: int = 100
    val_max_sequences: int = 48
    loss: str = "target"  # target (LM head at doctor positions only) | full (standard full-logits loss)
    max_train_samples: int | None = None  # tests / smoke runs: first N training samples
    description: str = ""

    @classmethod
    def from_settings(cls, name: str, settings, **overrides) -> TrainConfig:
        t = settings.train
        base = {k: getattr(t, k) for k in cls.__dataclass_fields__ if hasattr(t, k)}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(name=name, **base)

    def hyperparameters(self) -> dict[str, Any]:
        keys = (
            "max_seq_len lora_r lora_alpha lora_dropout target_modules lora_layers lr warmup_frac epochs max_steps batch_size "
            "grad_accum question_weight seed loss chatdoctor_limit val_frac max_minutes"
        ).split()
        return {k: getattr(self, k) for k in keys}


# --------------------------------------------------------------------------- tokens


@dataclass
class Packed:
    input_ids: list[int]
    labels: list[int]  # token id at completion positions, IGNORE elsewhere (unshifted, HF style)
    weights: list[float]
    sample_ids: list[str]
    conv_id: str


def encode_pair(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Prompt ids exactly as the runtime tokenizes a prompt (with BOS), completion ids without specials."""
    p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return list(p), list(c)


def pack_samples(
    samples: Sequence[Sample], tokenizer, max_seq_len: int, question_weight: float = 1.0, pack: bool = True
) -> list[Packed]:
    """Samples -> sequences. With ``pack``, a sample whose prompt tokens start with the running
    sequence of the same conversation extends it (several loss spans, shared context)."""
    by_conv: dict[str, list[Sample]] = {}
    for s in samples:
        by_conv.setdefault(s.conv_id, []).append(s)
    out: list[Packed] = []
    for conv_id, group in by_conv.items():
        group.sort(key=lambda s: s.turn_index)
        cur: Packed | None = None
        for s in group:
            p, c = encode_pair(tokenizer, s.prompt, s.completion)
            if len(p) + len(c) > max_seq_len:
                c = c[: max(0, max_seq_len - len(p))]
                if not c:
                    continue
            w = question_weight if s.is_question else 1.0
            if (
                pack
                and cur is not None
                and len(p) >= len(cur.input_ids)
                and p[: len(cur.input_ids)] == cur.input_ids
                and len(p) + len(c) <= max_seq_len
            ):
                extra = len(p) - len(cur.input_ids)
                cur.input_ids = p + c
                cur.labels += [IGNORE] * extra + c
                cur.weights += [0.0] * extra + [w] * len(c)
                cur.sample_ids.append(s.id)
                continue
            if cur is not None:
                out.append(cur)
            cur = Packed(p + c, [IGNORE] * len(p) + c, [0.0] * len(p) + [w] * len(c), [s.id], conv_id)
        if cur is not None:
            out.append(cur)
    return out


def collate(batch: Sequence[Packed], pad_id: int):
    import torch

    n = max(len(b.input_ids) for b in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    weights = torch.zeros((len(batch), n), dtype=torch.float32)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, b in enumerate(batch):
        L = len(b.input_ids)
        ids[i, :L] = torch.tensor(b.input_ids)
        labels[i, :L] = torch.tensor(b.labels)
        weights[i, :L] = torch.tensor(b.weights)
        mask[i, :L] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def bucketed_batches(packed: Sequence[Packed], batch_size: int, seed: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (shuffled megabatches sorted by length)."""
    rng = random.Random(seed)
    idx = list(range(len(packed)))
    rng.shuffle(idx)
    mega = batch_size * 16
    batches: list[list[int]] = []
    for i in range(0, len(idx), mega):
        chunk = sorted(idx[i : i + mega], key=lambda j: len(packed[j].input_ids))
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------- loss


def causal_lm_parts(model):
    """(transformer body, lm_head, final logit softcap) of a (possibly peft-wrapped) causal LM."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return m.model, m.lm_head, getattr(m.config, "final_logit_softcapping", None)


def target_nll(model, input_ids, attention_mask, labels):
    """Per-token NLL at target positions only: body -> select positions -> lm_head -> CE.

    Returns (nll[N], mask[B, T-1]) where mask marks the positions whose next token is a target.
    """
    import torch.nn.functional as F
    import torch

    body, head, cap = causal_lm_parts(model)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    tgt = labels[:, 1:]
    mask = tgt != IGNORE
    h = hidden[:, :-1][mask]
    logits = head(h).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits, tgt[mask], reduction="none"), mask


def target_loss(model, batch, weighted: bool = True):
    """Mean (optionally weighted) NLL over doctor tokens; equal to the full-logits loss when unweighted."""
    nll, mask = target_nll(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    if weighted and "weights" in batch:
        w = batch["weights"][:, 1:][mask].to(nll.dtype)
        if not bool((w == 1).all()):
            return (nll * w).sum() / w.sum().clamp_min(1e-8), int(mask.sum())
    return nll.mean(), int(mask.sum())


def full_loss(model, batch):
    """The standard loss: logits at every position (the speed baseline)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    return out.loss, int((batch["labels"][:, 1:] != IGNORE).sum())


# --------------------------------------------------------------------------- model


def load_trainable(resolved, cfg: TrainConfig, device: str):
    """Base model + fresh LoRA (QLoRA nf4 on CUDA, fp32 on CPU) and its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(resolved.path)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if device == "cuda":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        qc = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=qc, dtype=torch.bfloat16, device_map={"": 0}, local_files_only=True
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    extra: dict[str, Any] = {}
    if cfg.lora_layers:
        n_layers = model.config.get_text_config().num_hidden_layers
        extra["layers_to_transform"] = list(range(max(0, n_layers - cfg.lora_layers), n_layers))
    lcfg = LoraConfig(
        **extra,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lcfg)
    return model, tok


def _device_of(model):
    return next(model.parameters()).device


def _to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def evaluate_loss(model, packed: Sequence[Packed], pad_id: int, batch_size: int = 4) -> dict[str, float]:
    """Mean NLL per doctor token (unweighted) over ``packed``; perplexity = exp(loss)."""
    import torch

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    dev = _device_of(model)
    order = sorted(range(len(packed)), key=lambda i: len(packed[i].input_ids))
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            b = _to(collate([packed[j] for j in order[i : i + batch_size]], pad_id), dev)
            nll, _ = target_nll(model, b["input_ids"], b["attention_mask"], b["labels"])
            total += float(nll.double().sum())
            n += nll.numel()
    if was_training:
        model.train()
    loss = total / max(1, n)
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 4), "tokens": n}


# --------------------------------------------------------------------------- checkpoints


def _lora_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, state: dict, keep: int = 2) -> Path:
    import torch
    from safetensors.torch import save_file

    ck_root = run_dir / "checkpoints"
    d = ck_root / f"step-{state['step']:06d}"
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in _lora_state(model).items()}, str(tmp / "lora.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(d, ignore_errors=True)
    tmp.replace(d)
    for old in sorted(p for p in ck_root.glob("step-*") if not p.name.endswith(".tmp"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return d


def latest_checkpoint(run_dir: Path) -> Path | None:
    cks = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if not p.name.endswith(".tmp"))
    return cks[-1] if cks else None


def load_checkpoint(d: Path, model, optimizer, scheduler) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(d / "lora.safetensors")))
    optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(d / "scheduler.pt", weights_only=False))
    rng = torch.load(d / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    return json.loads((d / "state.json").read_text())


# --------------------------------------------------------------------------- training


class Schedule:
    """Linear warm-up then cosine decay to 10% of the peak LR.

    Progress is ``step / total_steps``, or the share of the ``max_minutes`` budget already spent when
    that is further along, so a time-boxed run still ends its decay at the deadline.
    """

    def __init__(self, optimizer, lr: float, total_steps: int, warmup_frac: float, budget_s: float | None):
        self.optimizer, self.lr, self.total_steps = optimizer, lr, total_steps
        self.warmup_frac, self.budget_s = warmup_frac, budget_s
        self.elapsed_s = 0.0  # training time so far (carried across --resume)
        self.last_lr = lr

    def progress(self, step: int) -> float:
        p = step / max(1, self.total_steps)
        if self.budget_s:
            p = max(p, self.elapsed_s / self.budget_s)
        return min(1.0, p)

    def factor(self, step: int) -> float:
        p = self.progress(step)
        if p < self.warmup_frac:
            return max(p, 1.0 / max(1, self.total_steps)) / self.warmup_frac
        q = (p - self.warmup_frac) / max(1e-9, 1 - self.warmup_frac)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q))

    def apply(self, step: int) -> float:
        self.last_lr = self.lr * self.factor(step)
        for g in self.optimizer.param_groups:
            g["lr"] = self.last_lr
        return self.last_lr

    def done(self, step: int) -> bool:
        return step >= self.total_steps or bool(self.budget_s and self.elapsed_s >= self.budget_s)

    def state_dict(self) -> dict:
        return {"elapsed_s": self.elapsed_s, "total_steps": self.total_steps, "budget_s": self.budget_s}

    def load_state_dict(self, d: dict) -> None:
        self.elapsed_s = float(d.get("elapsed_s", 0.0))


def write_card(out_dir: Path, name: str, base, **fields) -> None:
    """The adapter's ``card.yaml``: its name, the base model it was trained on (name + checksum, which
    loading checks), when, and ``fields`` (hyper-parameters, data sources, metrics)."""
    import yaml

    card = {
        "name": name,
        "base_model": base.name,
        "base_model_checksum": base.checksum,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }
    (out_dir / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))


def prepare_data(cfg: TrainConfig, settings, tokenizer) -> Dataset:
    from chatdoc.train.data import build_dataset

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    return build_dataset(
        settings.path(settings.train.data_dir),
        cfg.sources,
        count,
        max_seq_len=cfg.max_seq_len,
        jsonl=[Path(p) for p in cfg.jsonl],
        val_frac=cfg.val_frac,
        seed=cfg.seed,
        chatdoctor_limit=cfg.chatdoctor_limit,
    )


def train(
    cfg: TrainConfig,
    settings,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Train ``cfg.name``; writes ``train.output_dir/<name>/`` (PEFT files + card.yaml). Returns a summary."""
    import torch
    from tqdm.auto import tqdm

    from chatdoc.llm.adapters import validate_name
    from chatdoc.llm.source import resolve
    from chatdoc.train.data import data_sources_for_card, default_system

    validate_name(cfg.name)
    out_root = settings.path(settings.train.output_dir)
    out_dir = out_root / cfg.name
    if out_dir.exists() and not overwrite and not resume:
        raise TrainError(f"adapter {cfg.name!r} already exists in {out_root} (use --overwrite to replace it)")
    run_dir = settings.path(settings.train.runs_dir) / cfg.name
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() and settings.model.device != "cpu" else "cpu"

    t_start = time.perf_counter()
    resolved = resolve(settings.model.base, settings.path(settings.model.cache_dir))
    model, tok = load_trainable(resolved, cfg, device)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    system = default_system()
    ds = dataset or prepare_data(cfg, settings, tok)
    train_samples = ds.split("train")
    if cfg.max_train_samples:
        train_samples = train_samples[: cfg.max_train_samples]
    if not train_samples:
        raise TrainError("no training samples (check --sources / --jsonl)")
    train_packed = pack_samples(train_samples, tok, cfg.max_seq_len, cfg.question_weight)
    val_packed = pack_samples(ds.split("validation"), tok, cfg.max_seq_len)
    rng_val = random.Random(cfg.seed)
    if len(val_packed) > cfg.val_max_sequences:
        val_packed = rng_val.sample(val_packed, cfg.val_max_sequences)
    eval_packed = pack_samples(ds.split("eval"), tok, cfg.max_seq_len)
    if len(eval_packed) > cfg.val_max_sequences:  # the full eval is `chatdoc eval adapter`
        eval_packed = random.Random(cfg.seed + 1).sample(eval_packed, cfg.val_max_sequences)
    data_s = time.perf_counter() - t_start

    batches_per_epoch = math.ceil(len(train_packed) / cfg.batch_size)
    steps_per_epoch = max(1, batches_per_epoch // cfg.grad_accum)
    total_steps = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    scheduler = Schedule(optimizer, cfg.lr, total_steps, cfg.warmup_frac,
                         cfg.max_minutes * 60 if cfg.max_minutes else None)

    step = 0
    resumed_from = None
    if resume:
        ck = latest_checkpoint(run_dir)
        if ck is None:
            raise TrainError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
        state = load_checkpoint(ck, model, optimizer, scheduler)
        if state.get("data_key") != _data_key(cfg, len(train_packed)):
            raise TrainError(f"--resume: checkpoint {ck.name} was made with different data or settings")
        step = resumed_from = int(state["step"])
        logger.info("resumed {} from step {}", cfg.name, step)
    elif run_dir.exists():
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / "log.jsonl"

    def log(rec: dict) -> None:
        with open(log_file, "a") as f:
            f.write(json.dumps(rec) + "\n")

    log({"event": "start", "step": step, "config": asdict(cfg), "device": device, "data": ds.report,
         "train_sequences": len(train_packed), "total_steps": total_steps, "resumed_from": resumed_from})

    # Micro-batch schedule: epoch e uses bucketed_batches(seed + e); step s uses micro-batches
    # [s*ga, (s+1)*ga) of the concatenated schedule, so a resumed run sees exactly the same order.
    def micro_batch(i: int) -> list[int]:
        e, j = divmod(i, batches_per_epoch)
        if e not in _cache:
            _cache.clear()
            _cache[e] = bucketed_batches(train_packed, cfg.batch_size, cfg.seed + e)
        return _cache[e][j]

    _cache: dict[int, list[list[int]]] = {}

    val_hist = []
    if step == 0 and val_packed:
        v = evaluate_loss(model, val_packed, pad_id)
        val_hist.append({"step": 0, **v})
        log({"event": "validation", "step": 0, **v})
    model.train()
    loss_fn = target_loss if cfg.loss == "target" else (lambda m, b: full_loss(m, b))
    recent: list[float] = []
    tokens_seen = 0
    targets_seen = 0
    t_loop = time.perf_counter()
    val_s = 0.0  # time spent in periodic validation (excluded from tokens/s)
    bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.name}", unit="step", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    t_step = time.perf_counter()
    while not scheduler.done(step):
        scheduler.apply(step)
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for a in range(cfg.grad_accum):
            idx = micro_batch(step * cfg.grad_accum + a)
            b = _to(collate([train_packed[i] for i in idx], pad_id), _device_of(model))
            loss, n_t = loss_fn(model, b)
            (loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
            tokens_seen += int(b["attention_mask"].sum())
            targets_seen += n_t
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        now = time.perf_counter()
        scheduler.elapsed_s += now - t_step
        recent.append(step_loss)
        recent = recent[-50:]
        el = time.perf_counter() - t_loop - val_s
        tps = tokens_seen / el if el > 0 else 0.0
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}", avg=f"{sum(recent) / len(recent):.3f}", tok_s=f"{tps:.0f}")
        log({"event": "step", "step": step, "loss": round(step_loss, 5), "lr": scheduler.last_lr,
             "tokens_per_s": round(tps, 1), "elapsed_s": round(el, 1)})
        last = scheduler.done(step)
        if val_packed and (step % cfg.eval_every == 0 or last):
            tv = time.perf_counter()
            v = evaluate_loss(model, val_packed, pad_id)
            val_s += time.perf_counter() - tv
            val_hist.append({"step": step, **v})
            log({"event": "validation", "step": step, **v})
            logger.info("step {} train_loss {:.4f} val_loss {:.4f}", step, sum(recent) / len(recent), v["loss"])
        if step % cfg.save_every == 0 or last:
            save_checkpoint(run_dir, model, optimizer, scheduler,
                            {"step": step, "data_key": _data_key(cfg, len(train_packed)), "total_steps": total_steps})
        t_step = time.perf_counter()  # validation and checkpoint time do not count against the budget
    bar.close()
    train_s = time.perf_counter() - t_loop - val_s

    # what was actually trained on (the schedule is deterministic, so this holds across --resume)
    seen = [i for m in range(step * cfg.grad_accum) for i in micro_batch(m)]
    seen_seqs, seen_samples = len(seen), sum(len(train_packed[i].sample_ids) for i in seen)

    # final eval losses: adapter vs base on the MTS-Dialog validation split (fp32 / training precision)
    final_eval = evaluate_loss(model, eval_packed, pad_id) if eval_packed else {}
    with model.disable_adapter():
        base_eval = evaluate_loss(model, eval_packed, pad_id) if eval_packed else {}

    # write the adapter atomically: tmp dir then rename
    tmp = out_root / f".{cfg.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    # keep evaluation results of a previous card only when resuming the same adapter
    metrics = {
        "train_loss": round(sum(recent) / len(recent), 5) if recent else None,
        "validation_loss": val_hist[-1]["loss"] if val_hist else None,
        "validation_loss_base": val_hist[0]["loss"] if val_hist and val_hist[0]["step"] == 0 else None,
        "validation_history": val_hist,
        "eval_mts_validation": {"adapter": final_eval, "base": base_eval},
        "train_tokens_per_s": round(tokens_seen / train_s, 1) if train_s > 0 else None,
    }
    hp = cfg.hyperparameters()
    hp.update({"device": device, "precision": "qlora-nf4" if device == "cuda" else "fp32", "threads": torch.get_num_threads()})
    write_card(
        tmp,
        cfg.name,
        resolved,
        description=cfg.description
        or "LoRA on doctor turns of doctor-patient dialogues (loss on doctor tokens only), chatdoc prompt format",
        data_sources=data_sources_for_card(ds.report),
        hyperparameters=hp,
        steps=step,
        sequences_seen=seen_seqs,
        samples_seen=seen_samples,
        epochs_seen=round(seen_seqs / max(1, len(train_packed)), 3),
        train_sequences=len(train_packed),
        train_samples=len(train_samples),
        train_time_s=round(train_s, 1),
        resumed_from=resumed_from,
        system_prompt=system,
        data_report={k: ds.report[k] for k in ("totals", "question_share", "system_sha256") if k in ds.report},
        metrics=metrics,
        command=command,
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.replace(out_dir)
    summary = {
        "name": cfg.name,
        "adapter_dir": str(out_dir),
        "steps": step,
        "resumed_from": resumed_from,
        "train_loss": metrics["train_loss"],
        "validation_loss": metrics["validation_loss"],
        "validation_loss_base": metrics["validation_loss_base"],
        "eval_perplexity": final_eval.get("perplexity"),
        "eval_perplexity_base": base_eval.get("perplexity"),
        "train_time_s": round(train_s, 1),
        "data_time_s": round(data_s, 1),
        "tokens_per_s": metrics["train_tokens_per_s"],
        "train_sequences": len(train_packed),
        "train_samples": len(train_samples),
        "samples_seen": seen_samples,
        "adapter_bytes": sum(f.stat().st_size for f in out_dir.iterdir() if f.is_file()),
        "log": str(log_file),
    }
    log({"event": "done", **summary})
    return summary


def _data_key(cfg: TrainConfig, n_packed: int) -> str:
    keys = (cfg.sources, cfg.jsonl, cfg.chatdoctor_limit, cfg.max_seq_len, cfg.val_frac, cfg.seed, cfg.batch_size,
            cfg.grad_accum, cfg.max_train_samples, n_packed)
    return json.dumps(keys, default=str)


# --------------------------------------------------------------------------- speed


def measure_speed(
    settings, *, samples: int = 16, batch_size: int = 4, max_seq_len: int = 448, threads: int = 1,
    lora_r: int = 16, lora_layers: int | None = None, sources: Sequence[str] = ("mts",), seed: int = 0,
) -> dict[str, Any]:
    """Training throughput of the loss variants on the SAME doctor-turn samples (whole conversations).

    Variants: ``full_logits`` (standard loss, one sequence per sample), ``target_only`` (LM head at doctor
    positions only, one sequence per sample) and ``target_only_packed`` (plus prefix packing). Each does
    optimizer steps over all of its sequences after one warm-up step on other data, so the doctor tokens
    trained are identical; ``tokens_per_s`` counts the non-padding input tokens actually processed and
    ``effective_tokens_per_s`` the tokens of the unpacked samples (what packing saves is counted as done).
    """
    import torch

    from chatdoc.llm.source import resolve

    cfg = TrainConfig(name="speed", sources=list(sources), max_seq_len=max_seq_len, lora_r=lora_r,
                      lora_alpha=2 * lora_r, lora_layers=lora_layers, batch_size=batch_size, grad_accum=1,
                      seed=seed, threads=threads)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    resolved = resolve(settings.model.base, settings.path(settings.model.cache_dir))
    model, tok = load_trainable(resolved, cfg, "cpu")
    pad_id = tok.pad_token_id or 0
    ds = prepare_data(cfg, settings, tok)
    train_samples = ds.split("train")
    by_conv: dict[str, list[Sample]] = {}
    for s in train_samples:
        by_conv.setdefault(s.conv_id, []).append(s)
    convs = sorted(c for c, v in by_conv.items() if len(v) >= 2)
    random.Random(seed).shuffle(convs)
    subset: list[Sample] = []
    for c in convs:
        if len(subset) >= samples:
            break
        subset += by_conv[c]
    warm = pack_samples(by_conv[convs[-1]], tok, max_seq_len, pack=False)[:batch_size]
    unpacked = pack_samples(subset, tok, max_seq_len, pack=False)
    effective = sum(len(p.input_ids) for p in unpacked)
    variants = {
        "full_logits": (full_loss, unpacked),
        "target_only": (target_loss, unpacked),
        "target_only_packed": (target_loss, pack_samples(subset, tok, max_seq_len, pack=True)),
    }
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch_size": batch_size, "max_seq_len": max_seq_len,
                           "samples": len(subset), "lora_r": lora_r, "lora_layers": lora_layers}
    model.train()
    for name, (fn, packed) in variants.items():
        fn(model, collate(warm, pad_id))[0].backward()  # warm-up (allocator, kernels)
        opt.zero_grad(set_to_none=True)
        tokens = targets = 0
        t0 = time.perf_counter()
        for bi in bucketed_batches(packed, batch_size, seed):
            b = collate([packed[j] for j in bi], pad_id)
            opt.zero_grad(set_to_none=True)
            loss, n_t = fn(model, b)
            loss.backward()
            opt.step()
            tokens += int(b["attention_mask"].sum())
            targets += n_t
        el = time.perf_counter() - t0
        out[name] = {
            "sequences": len(packed),
            "seconds": round(el, 1),
            "tokens_per_s": round(tokens / el, 1),
            "effective_tokens_per_s": round(effective / el, 1),
            "target_tokens_per_s": round(targets / el, 1),
            "samples_per_s": round(len(subset) / el, 3),
        }
    base = out["full_logits"]["seconds"]
    out["speedup"] = {k: round(base / out[k]["seconds"], 2) for k in ("target_only", "target_only_packed")}
    return out
