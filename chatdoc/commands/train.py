"""``chatdoc train sft|data|tasks|speed`` and ``chatdoc eval adapter``."""

from __future__ import annotations

import shlex
import sys

import typer

from chatdoc.commands._util import emit, fail


def _sources(value: str | None, default: list[str]) -> list[str]:
    if value is None:
        return list(default)
    out = [s.strip().lower() for s in value.split(",") if s.strip()]
    from chatdoc.train.data import SOURCES

    bad = [s for s in out if s not in SOURCES]
    if bad:
        fail(f"unknown source(s) {', '.join(bad)} (known: {', '.join(SOURCES)}; use --jsonl for your own)")
    return out


train_app = typer.Typer(help="Fine-tune LoRA adapters on doctor turns.", no_args_is_help=True)


@train_app.command("data")
def data_cmd(
    sources: str = typer.Option(None, "--sources", help="Comma-separated: mts,aci,chatdoctor."),
    jsonl: list[str] = typer.Option([], "--jsonl", help="Extra conversations in chatdoc JSONL (repeatable)."),
    max_seq_len: int = typer.Option(None, "--max-seq-len", min=32),
    chatdoctor_limit: int = typer.Option(None, "--chatdoctor-limit", min=0),
    out: str = typer.Option(None, "--out", help="Write the samples as JSONL here."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build the training samples and report counts per source and split (nothing is trained)."""
    from chatdoc.config import get_settings
    from chatdoc.train.data import DataError, build_dataset, write_jsonl

    s = get_settings()
    t = s.train
    try:
        tok = _tokenizer(s)
        ds = build_dataset(
            s.path(t.data_dir),
            _sources(sources, t.sources),
            lambda x: len(tok(x, add_special_tokens=True)["input_ids"]),
            max_seq_len=max_seq_len or t.max_seq_len,
            jsonl=jsonl,
            val_frac=t.val_frac,
            seed=t.seed,
            chatdoctor_limit=t.chatdoctor_limit if chatdoctor_limit is None else chatdoctor_limit,
        )
    except DataError as e:
        fail(str(e))
    report = dict(ds.report)
    if out:
        report["written"] = {"path": out, "samples": write_jsonl(ds.samples, s.path(out))}
    if as_json:
        emit(report, True)
        return
    for key, v in report["sources"].items():
        typer.echo(f"{key} ({v.get('license')}): conversations {v['conversations']} samples {v['samples']} dropped {v['dropped']}")
    typer.echo(f"totals: {report['totals']}  question share: {report['question_share']}")
    if out:
        typer.echo(f"wrote {report['written']['samples']} samples to {out}")


@train_app.command("tasks")
def tasks_cmd(
    out: str = typer.Option(..., "--out", help="Write the job examples (chatdoc JSONL, target: last) here."),
    limit_per_task: int = typer.Option(None, "--limit-per-task", min=1, help="At most N examples per task."),
    total: int = typer.Option(6000, "--total", min=10, help="Examples in all (mixed ack/question/answer/consult)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build multi-task examples for the model's jobs (ack, question, answer) + consultation turns."""
    from chatdoc.config import get_settings
    from chatdoc.train.tasks import build_tasks, write_tasks

    s = get_settings()
    examples, report = build_tasks(s.path(s.train.data_dir), limit_per_task=limit_per_task, total=total)
    report["written"] = {"path": out, "examples": write_tasks(examples, s.path(out))}
    if as_json:
        emit(report, True)
        return
    for task, v in report["tasks"].items():
        typer.echo(f"{task}: {v['total']}  splits {v['splits']}  sources {v['sources']}  personas {v['personas']}")
    typer.echo(f"candidates: {report['candidates']}")
    if report["skipped"]:
        typer.echo(f"skipped: {report['skipped']}")
    typer.echo(f"wrote {report['written']['examples']} examples to {out}")


@train_app.command("sft")
def sft_cmd(
    name: str = typer.Option(..., "--name", help="Adapter name (directory under adapters/)."),
    sources: str = typer.Option(None, "--sources", help="Comma-separated: mts,aci,chatdoctor."),
    jsonl: list[str] = typer.Option([], "--jsonl", help="Extra conversations in chatdoc JSONL (repeatable)."),
    chatdoctor_limit: int = typer.Option(None, "--chatdoctor-limit", min=0),
    max_steps: int = typer.Option(None, "--max-steps", min=1),
    epochs: float = typer.Option(None, "--epochs", min=0.01),
    max_minutes: float = typer.Option(None, "--max-minutes", min=0.01, help="Wall-clock budget (LR decays by it)."),
    lora_layers: int = typer.Option(None, "--lora-layers", min=1, help="Adapt only the top N layers."),
    lr: float = typer.Option(None, "--lr", min=0.0),
    lora_r: int = typer.Option(None, "--lora-r", min=1),
    lora_alpha: int = typer.Option(None, "--lora-alpha", min=1),
    lora_dropout: float = typer.Option(None, "--lora-dropout", min=0.0, max=0.99),
    target_modules: str = typer.Option(None, "--target-modules", help="Comma-separated module names."),
    max_seq_len: int = typer.Option(None, "--max-seq-len", min=32),
    batch_size: int = typer.Option(None, "--batch-size", min=1),
    grad_accum: int = typer.Option(None, "--grad-accum", min=1),
    question_weight: float = typer.Option(None, "--question-weight", min=0.01),
    seed: int = typer.Option(None, "--seed"),
    threads: int = typer.Option(None, "--threads", min=0),
    eval_every: int = typer.Option(None, "--eval-every", min=1),
    save_every: int = typer.Option(None, "--save-every", min=1),
    val_max_sequences: int = typer.Option(None, "--val-max-sequences", min=1),
    max_train_samples: int = typer.Option(None, "--max-train-samples", min=1),
    loss: str = typer.Option("target", "--loss", help="target (fast, doctor positions only) | full"),
    description: str = typer.Option(None, "--description"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing adapter of that name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train a LoRA adapter on doctor turns (QLoRA on CUDA, fp32 LoRA on CPU)."""
    from chatdoc.config import get_settings
    from chatdoc.llm import AdapterError, ModelNotFoundError
    from chatdoc.train.data import DataError
    from chatdoc.train.sft import TrainConfig, TrainError, train

    if loss not in ("target", "full"):
        fail("--loss must be 'target' or 'full'")
    s = get_settings()
    cfg = TrainConfig.from_settings(
        name,
        s,
        sources=_sources(sources, s.train.sources),
        jsonl=list(jsonl),
        chatdoctor_limit=chatdoctor_limit,
        max_steps=max_steps,
        epochs=epochs,
        max_minutes=max_minutes,
        lora_layers=lora_layers,
        lr=lr,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=[m.strip() for m in target_modules.split(",")] if target_modules else None,
        max_seq_len=max_seq_len,
        batch_size=batch_size,
        grad_accum=grad_accum,
        question_weight=question_weight,
        seed=seed,
        threads=threads,
        eval_every=eval_every,
        save_every=save_every,
        val_max_sequences=val_max_sequences,
        max_train_samples=max_train_samples,
        loss=loss,
        description=description,
    )
    command = "chatdoc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        summary = train(cfg, s, resume=resume, overwrite=overwrite, progress=not as_json, command=command)
    except (TrainError, DataError, AdapterError, ModelNotFoundError) as e:
        fail(str(e))
    emit(summary, as_json)


@train_app.command("speed")
def speed_cmd(
    samples: int = typer.Option(16, "--samples", min=1, help="Doctor-turn samples (whole conversations)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    max_seq_len: int = typer.Option(None, "--max-seq-len", min=32),
    lora_layers: int = typer.Option(None, "--lora-layers", min=1),
    threads: int = typer.Option(1, "--threads", min=0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Training throughput on the same samples: full-logits loss vs target-only LM head (+ packing), CPU."""
    from chatdoc.config import get_settings
    from chatdoc.train.sft import measure_speed

    s = get_settings()
    emit(measure_speed(s, samples=samples, batch_size=batch_size, lora_layers=lora_layers,
                       max_seq_len=max_seq_len or s.train.max_seq_len, threads=threads), as_json)


def eval_adapter(
    adapter: str = typer.Option(..., "--adapter", help="Adapter name in adapters/."),
    limit: int = typer.Option(None, "--limit", min=1, help="MTS-Dialog validation conversations (default 16)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, max=512),
    write_card: bool = typer.Option(False, "--write-card", help="Store the result in the adapter's card.yaml."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Base vs adapter on MTS-Dialog validation: perplexity, proactive questions, distinct-1/2, length."""
    from chatdoc.config import get_settings
    from chatdoc.llm import AdapterError, ModelNotFoundError, get_backend
    from chatdoc.train.data import DataError
    from chatdoc.tools.eval.adapter import DEFAULT_LIMIT, MAX_NEW_TOKENS, evaluate_adapter, update_card_metrics

    s = get_settings()
    try:
        b = get_backend(s)
        r = evaluate_adapter(
            adapter,
            settings=s,
            backend=b,
            limit=limit or DEFAULT_LIMIT,
            max_new_tokens=max_new_tokens or MAX_NEW_TOKENS,
            progress=not as_json,
        )
        if write_card:
            update_card_metrics(b.adapters_root / adapter, r)
    except (AdapterError, ModelNotFoundError, DataError, ValueError) as e:
        fail(str(e))
    if as_json:
        emit(r, True)
        return
    typer.echo(f"adapter {adapter} vs base on {r['eval_set']} ({r['conversations']} conversations, {r['history_prompts']} history prompts)")
    typer.echo(f"{'metric':28s} {'base':>10s} {'adapter':>10s} {'reference':>10s}")
    for k in ("perplexity", "proactive_question_rate", "distinct_1", "distinct_2", "avg_words", "avg_new_tokens"):
        ref = r["reference"].get(k, "")
        typer.echo(f"{k:28s} {r['base'][k]!s:>10s} {r['adapter'][k]!s:>10s} {ref!s:>10s}")
    typer.echo(f"perplexity reduction: {r['perplexity_reduction']:.1%}  examples: {r['examples_file']}")


def _tokenizer(settings):
    from transformers import AutoTokenizer

    from chatdoc.llm.source import resolve

    r = resolve(settings.model.base, settings.path(settings.model.cache_dir))
    return AutoTokenizer.from_pretrained(str(r.path), local_files_only=True)
