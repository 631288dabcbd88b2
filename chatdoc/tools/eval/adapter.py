"""Adapter evaluation: base vs adapter on MTS-Dialog's validation split, through the runtime backend.

Everything runs on the transformers backend (``chatdoc.llm.get_backend(kind="transformers")``: nf4 base + the
adapter hot-swapped in; perplexity needs the torch model's logits), the reference of the deployed engines.

Metrics (each for the base and for the adapter)
  * ``perplexity``: exp(mean NLL) over every doctor token of the evaluated conversations, each doctor
    turn predicted from its preceding context in the training prompt format (persona system text).
  * ``proactive_question_rate``: share of replies that contain '?' on prompts cut mid-history. For each
    conversation the cut points are doctor turns that follow at least one patient turn and at which
    the real doctor asked a question (history was still being taken); the middle one is used. Greedy
    decoding, ``max_new_tokens`` (40) tokens, the runtime's stop sequences and repetition penalty.
  * ``distinct_1`` / ``distinct_2``: unique / total word uni- and bigrams over all replies.
  * ``avg_words`` / ``avg_new_tokens``: reply length.
Side-by-side examples go to ``train.eval_dir/<adapter>-examples.md``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatdoc.llm.prompt import Turn, render
from chatdoc.train.data import Conversation, conversation_samples, default_system, load_mts

DEFAULT_LIMIT = 16  # conversations: a few minutes on 2 idle CPU cores
MAX_NEW_TOKENS = 40


def eval_conversations(data_dir: Path, limit: int | None = DEFAULT_LIMIT) -> list[Conversation]:
    convs = [c for c in load_mts(data_dir) if c.split == "eval" and any(t.role == "doctor" for t in c.turns)]
    return convs[:limit] if limit else convs


def history_cut(conv: Conversation) -> int | None:
    """Index of the doctor turn to generate in place of: mid-history, where the real doctor asked."""
    cands = [
        k
        for k, t in enumerate(conv.turns)
        if t.role == "doctor" and "?" in t.text and any(x.role == "patient" for x in conv.turns[:k])
    ]
    return cands[len(cands) // 2] if cands else None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def distinct(texts: Sequence[str], n: int) -> float:
    grams = []
    for t in texts:
        w = _words(t)
        grams += [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def reply_stats(texts: Sequence[str]) -> dict[str, float]:
    n = max(1, len(texts))
    return {
        "proactive_question_rate": round(sum("?" in t for t in texts) / n, 4),
        "distinct_1": distinct(texts, 1),
        "distinct_2": distinct(texts, 2),
        "avg_words": round(sum(len(_words(t)) for t in texts) / n, 2),
        "empty_rate": round(sum(not t.strip() for t in texts) / n, 4),
    }


def perplexity(backend, packed, adapter: str | None) -> dict[str, Any]:
    """Doctor-token perplexity with the runtime model (adapter or base), target-only LM head."""
    import math

    import torch

    from chatdoc.train.sft import collate, target_nll

    pad = backend.tokenizer.pad_token_id or 0
    total, n = 0.0, 0
    order = sorted(range(len(packed)), key=lambda i: len(packed[i].input_ids))
    with backend._lock:
        if adapter is not None:
            backend.load_adapter(adapter)
        with backend._use_adapter(adapter), torch.inference_mode():
            for i in range(0, len(order), 4):
                b = collate([packed[j] for j in order[i : i + 4]], pad)
                b = {k: v.to(backend.device) for k, v in b.items()}
                nll, _ = target_nll(backend.model, b["input_ids"], b["attention_mask"], b["labels"])
                total += float(nll.double().sum())
                n += nll.numel()
    loss = total / max(1, n)
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 4), "tokens": n}


def evaluate_adapter(
    adapter: str,
    *,
    settings=None,
    backend=None,
    limit: int | None = DEFAULT_LIMIT,
    max_new_tokens: int = MAX_NEW_TOKENS,
    examples: int = 6,
    examples_file: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Base vs ``adapter``: perplexity, proactive-question rate, distinct-1/2, length; writes examples."""
    from tqdm.auto import tqdm

    from chatdoc.config import get_settings
    from chatdoc.llm import GenerationRequest, get_backend
    from chatdoc.train.sft import pack_samples

    settings = settings or get_settings()
    if backend is None or getattr(backend, "kind", None) != "transformers":
        backend = get_backend(settings, kind="transformers")  # perplexity needs the torch model's logits
    backend.load_adapter(adapter)  # fail early (not found / wrong base / malformed)
    t0 = time.perf_counter()
    system = default_system()
    convs = eval_conversations(settings.path(settings.train.data_dir), limit)
    if not convs:
        raise ValueError("no evaluation conversations found (MTS-Dialog validation split)")

    def count(text: str) -> int:
        return backend.count_tokens(text)

    max_len = min(settings.train.max_seq_len, settings.model.max_context_tokens)
    samples = [s for c in convs for s in conversation_samples(c, system, count, max_len, "eval")]
    packed = pack_samples(samples, backend.tokenizer, max_len)
    ppl = {"base": perplexity(backend, packed, None), "adapter": perplexity(backend, packed, adapter)}

    prompts = []
    for c in convs:
        k = history_cut(c)
        if k is None:
            continue
        prompt = backend.build_prompt(system, c.turns[:k], max_new_tokens=max_new_tokens)
        prompts.append({"conv_id": c.id, "turns": c.turns[:k], "reference": c.turns[k].text, "prompt": prompt})
    replies: dict[str, list[str]] = {"base": [], "adapter": []}
    tokens: dict[str, list[int]] = {"base": [], "adapter": []}
    bar = tqdm(total=2 * len(prompts), desc=f"eval {adapter}", unit="reply", disable=not progress)
    for p in prompts:
        for side, name in (("base", None), ("adapter", adapter)):
            r = backend.generate(
                GenerationRequest(prompt=p["prompt"], max_new_tokens=max_new_tokens, greedy=True, adapter=name)
            )
            replies[side].append(r.text)
            tokens[side].append(r.new_tokens)
            bar.update(1)
    bar.close()
    result: dict[str, Any] = {
        "adapter": adapter,
        "eval_set": "MTS-Dialog validation split",
        "conversations": len(convs),
        "doctor_turns_scored": len(samples),
        "history_prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy, runtime stop sequences and repetition penalty",
        "quantization": backend.info()["quantization"]["in_effect"],
        "reference": reply_stats([p["reference"] for p in prompts]),
    }
    for side in ("base", "adapter"):
        result[side] = {
            "perplexity": ppl[side]["perplexity"],
            "nll": ppl[side]["loss"],
            **reply_stats(replies[side]),
            "avg_new_tokens": round(sum(tokens[side]) / max(1, len(tokens[side])), 2),
        }
    b, a = result["base"]["perplexity"], result["adapter"]["perplexity"]
    result["perplexity_reduction"] = round(1 - a / b, 4) if b else None
    result["seconds"] = round(time.perf_counter() - t0, 1)

    out = examples_file or settings.path(settings.train.eval_dir) / f"{adapter}-examples.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_examples_md(adapter, result, prompts, replies, examples))
    result["examples_file"] = str(out)
    return result


def _examples_md(adapter: str, result: dict, prompts: list[dict], replies: dict, n: int) -> str:
    lines = [
        f"# Adapter `{adapter}` vs base: side-by-side examples",
        "",
        f"MTS-Dialog validation split (CC BY 4.0, Ben Abacha et al. 2023); prompts cut mid-history; greedy, "
        f"{result['max_new_tokens']} new tokens max, {result['quantization']} base.",
        "",
        "| metric | base | adapter | reference doctor |",
        "|---|---|---|---|",
    ]
    for k in ("perplexity", "proactive_question_rate", "distinct_1", "distinct_2", "avg_words"):
        lines.append(
            f"| {k} | {result['base'].get(k)} | {result['adapter'].get(k)} | {result['reference'].get(k, '')} |"
        )
    lines.append("")
    for i, p in enumerate(prompts[:n]):
        lines += [f"## {i + 1}. `{p['conv_id']}`", "", "Context (last turns):", ""]
        for t in p["turns"][-4:]:
            lines.append(f"> **{t.role.capitalize()}:** {t.text}")
            lines.append(">")
        lines += [
            "",
            f"- **Reference doctor:** {p['reference']}",
            f"- **Base:** {replies['base'][i] or '(empty)'}",
            f"- **Adapter:** {replies['adapter'][i] or '(empty)'}",
            "",
        ]
    return "\n".join(lines)


def update_card_metrics(adapter_dir: Path, result: dict[str, Any]) -> None:
    """Store an evaluation result in the adapter's card under ``metrics.eval``."""
    import yaml

    card_file = Path(adapter_dir) / "card.yaml"
    card = yaml.safe_load(card_file.read_text()) or {}
    metrics = card.setdefault("metrics", {}) or {}
    keep = {k: v for k, v in result.items() if k not in ("examples_file",)}
    metrics["eval"] = keep
    card["metrics"] = metrics
    card_file.write_text(yaml.safe_dump(card, sort_keys=False))


__all__ = ["evaluate_adapter", "history_cut", "distinct", "reply_stats", "update_card_metrics", "Turn", "render"]
