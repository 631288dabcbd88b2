"""PEFT LoRA adapter -> GGUF LoRA adapter, the file llama.cpp loads (``llama_adapter_lora_init``).

The conversion follows llama.cpp's own ``convert_lora_to_gguf.py`` without needing llama.cpp's sources,
transformers or the base model's weights:

* tensor names come from the ``gguf`` package's tensor-name mapping for the base architecture
  (``model.layers.8.self_attn.q_proj`` -> ``blk.8.attn_q``), each LoRA pair written as
  ``<base name>.weight.lora_a`` / ``.lora_b``;
* PEFT's ``lora_A`` (rank, in_features) and ``lora_B`` (out_features, rank) are written as they are: in
  GGUF (ggml) order that is ``lora_a.ne = [in, rank]`` and ``lora_b.ne = [rank, out]``, which is what
  llama.cpp checks on load (``model.ne[0] == a.ne[0]``, ``model.ne[1] == b.ne[1]``, ``a.ne[1] == b.ne[0]``).
  Gemma 3's attention weights are not permuted by llama.cpp's HF converter (unlike LLaMA's q/k), so no
  reordering is needed; only token-embedding LoRA would need ``lora_a`` transposed, and that is refused here;
* metadata: ``general.architecture`` = the base's (``gemma3``), ``general.type = "adapter"``,
  ``adapter.type = "lora"``, ``adapter.lora.alpha``. llama.cpp scales each pair by ``alpha / rank`` (rank
  read from the tensors), which is PEFT's ``lora_alpha / r``; rsLoRA (``alpha / sqrt(r)``) is expressed by
  writing ``alpha * sqrt(r)``.

Converted files are cached as ``<model.cache_dir>/gguf-lora/<adapter>-<sha12 of the safetensors>.gguf``
(:func:`ensure_gguf_lora`), written to a temporary name and renamed, so a crash never leaves a half file.
Anything llama.cpp's LoRA path cannot express (DoRA, ``modules_to_save``, embedding/LM-head LoRA, LoRA
biases, per-module alpha, trainable tokens) raises :class:`~chatdoc.llm.adapters.AdapterError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatdoc.llm.adapters import AdapterError

SAFETENSORS = "adapter_model.safetensors"
LORA_DTYPE = "float32"  # what llama.cpp's converter writes by default (--outtype f32); LoRA tensors are small


@dataclass(frozen=True)
class BaseInfo:
    """What the conversion needs to know about the base model (read from its GGUF header)."""

    arch: str  # general.architecture, e.g. "gemma3"
    n_blocks: int  # <arch>.block_count
    shapes: dict[str, tuple[int, ...]]  # tensor name -> ggml ne (ne[0] = input features for a matrix)


def read_base_info(base_gguf: str | Path) -> BaseInfo:
    """Architecture, block count and tensor shapes of a GGUF model (header only, memory-mapped)."""
    import gguf

    r = gguf.GGUFReader(str(base_gguf))
    arch = r.fields["general.architecture"].contents()
    n_blocks = int(r.fields[f"{arch}.block_count"].contents())
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in r.tensors}
    return BaseInfo(arch=arch, n_blocks=n_blocks, shapes=shapes)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _refuse(name: str, why: str) -> AdapterError:
    return AdapterError("unsupported", f"adapter {name!r} cannot run on llama.cpp: {why}")


def check_config(name: str, cfg: dict[str, Any]) -> float:
    """Refuse what llama.cpp's LoRA cannot express; return the alpha to write (before any rsLoRA factor)."""
    if cfg.get("peft_type") != "LORA":
        raise _refuse(name, f"peft_type is {cfg.get('peft_type')!r}, not LORA")
    if cfg.get("use_dora"):
        raise _refuse(name, "DoRA (use_dora) has a magnitude vector llama.cpp does not apply")
    if cfg.get("modules_to_save"):
        raise _refuse(name, f"modules_to_save {cfg['modules_to_save']} would replace whole base weights")
    if cfg.get("trainable_token_indices"):
        raise _refuse(name, "trainable_token_indices changes embeddings")
    if cfg.get("lora_bias") or cfg.get("bias", "none") != "none":
        raise _refuse(name, "LoRA biases are not supported")
    if cfg.get("alpha_pattern"):
        raise _refuse(name, "per-module alpha (alpha_pattern): a GGUF LoRA has one alpha")
    if cfg.get("layer_replication"):
        raise _refuse(name, "layer_replication")
    for flag in ("use_qalora", "use_bdlora", "target_parameters", "alora_invocation_tokens"):
        if cfg.get(flag):
            raise _refuse(name, f"{flag} is set")
    targets = cfg.get("target_modules") or []
    if isinstance(targets, str):  # a regex in PEFT: checked tensor by tensor below
        targets = []
    bad = [t for t in targets if any(w in t for w in ("embed", "lm_head", "wte", "norm"))]
    if bad:
        raise _refuse(name, f"target modules {bad} (embeddings / output head / norms)")
    return float(cfg["lora_alpha"])


def _strip_prefix(key: str) -> str:
    for p in ("base_model.model.",):
        if key.startswith(p):
            key = key[len(p):]
    for p, rep in (("model.language_model.", "model."), ("language_model.", "")):
        if key.startswith(p):
            return rep + key[len(p):]
    return key


def convert(adapter_dir: str | Path, out_path: str | Path, base: BaseInfo, name: str | None = None) -> dict[str, Any]:
    """Write the GGUF LoRA for the PEFT adapter in ``adapter_dir``; returns a summary (tensors, alpha, ranks)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    adapter_dir = Path(adapter_dir)
    name = name or adapter_dir.name
    cfg_file = adapter_dir / "adapter_config.json"
    st_file = adapter_dir / SAFETENSORS
    if not cfg_file.exists() or not st_file.exists():
        raise AdapterError("malformed", f"adapter {name!r}: needs adapter_config.json and {SAFETENSORS}")
    cfg = json.loads(cfg_file.read_text())
    alpha = check_config(name, cfg)

    arch_id = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(base.arch)
    if arch_id is None:
        raise _refuse(name, f"unknown base architecture {base.arch!r}")
    name_map = gguf.get_tensor_name_map(arch_id, base.n_blocks)

    pairs: dict[str, dict[str, Any]] = {}
    with safe_open(str(st_file), "np") as f:
        for key in f.keys():
            k = _strip_prefix(key)
            if ".lora_A." in k or k.endswith(".lora_A.weight"):
                module, part = k.split(".lora_A.")[0], "a"
            elif ".lora_B." in k or k.endswith(".lora_B.weight"):
                module, part = k.split(".lora_B.")[0], "b"
            elif "lora_embedding" in k or k.endswith(("embed_tokens.weight", "lm_head.weight")):
                raise _refuse(name, f"tensor {key!r}: embedding / output-head weights in the adapter")
            elif "lora_magnitude_vector" in k:
                raise _refuse(name, f"tensor {key!r}: DoRA magnitude")
            else:
                raise _refuse(name, f"tensor {key!r} is neither lora_A nor lora_B")
            if not k.endswith(".weight"):
                raise _refuse(name, f"tensor {key!r}: unexpected LoRA tensor layout")
            gname = name_map.get_name(module)
            if gname is None:
                raise _refuse(name, f"module {module!r} has no {base.arch} GGUF tensor")
            if gname in ("token_embd", "output") or "norm" in gname:
                raise _refuse(name, f"module {module!r} -> {gname} (embeddings / output head / norms)")
            pairs.setdefault(gname + ".weight", {})[part] = f.get_tensor(key)

    if not pairs:
        raise AdapterError("malformed", f"adapter {name!r} has no LoRA tensors")
    ranks = set()
    for tname, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise AdapterError("malformed", f"adapter {name!r}: {tname} lacks lora_{'b' if 'a' in ab else 'a'}")
        a, b = ab["a"], ab["b"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise AdapterError("malformed", f"adapter {name!r}: {tname} lora shapes {a.shape} / {b.shape} do not chain")
        want = base.shapes.get(tname)
        if want is None:
            raise AdapterError("wrong_base", f"adapter {name!r}: the base model has no tensor {tname}")
        # ggml ne of the base matrix = (in_features, out_features); numpy shapes are reversed
        if (a.shape[1], b.shape[0]) != (want[0], want[1]):
            raise AdapterError(
                "wrong_base",
                f"adapter {name!r}: {tname} is {want[0]}->{want[1]} in the base, the LoRA is {a.shape[1]}->{b.shape[0]}",
            )
        ranks.add(int(a.shape[0]))

    if cfg.get("use_rslora"):
        if len(ranks) != 1:
            raise _refuse(name, "rsLoRA with per-module ranks cannot be expressed with one alpha")
        alpha = alpha * math.sqrt(next(iter(ranks)))  # llama.cpp: alpha / r ; rsLoRA: lora_alpha / sqrt(r)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + f".tmp{os.getpid()}")
    w = gguf.GGUFWriter(str(tmp), base.arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    w.add_name(name)
    w.add_string("chatdoc.adapter.source_sha256", sha256_of(Path(adapter_dir) / SAFETENSORS))
    n = 0
    for tname, ab in sorted(pairs.items()):
        w.add_tensor(tname + ".lora_a", np.ascontiguousarray(ab["a"], dtype=LORA_DTYPE))
        w.add_tensor(tname + ".lora_b", np.ascontiguousarray(ab["b"], dtype=LORA_DTYPE))
        n += 2
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()
    tmp.replace(out_path)
    return {"path": str(out_path), "tensors": n, "modules": len(pairs), "alpha": alpha, "ranks": sorted(ranks),
            "arch": base.arch}


def cache_path(cache_dir: str | Path, name: str, adapter_dir: str | Path) -> Path:
    sha = sha256_of(Path(adapter_dir) / SAFETENSORS)
    return Path(cache_dir).expanduser() / "gguf-lora" / f"{name}-{sha[:12]}.gguf"


def ensure_gguf_lora(adapter_dir: str | Path, name: str, cache_dir: str | Path,
                     base: BaseInfo | Callable[[], BaseInfo]) -> Path:
    """The cached GGUF LoRA for this adapter (converted now if absent or the safetensors changed).

    ``base`` may be a callable: reading the base GGUF's header is only needed when converting."""
    out = cache_path(cache_dir, name, adapter_dir)
    if not out.exists():
        convert(adapter_dir, out, base() if callable(base) else base, name)
    return out
