"""LoRA adapter files: discovery, cards and validation (loading into a model is the backend's job).

An adapter lives in ``<adapters.dir>/<name>/`` with the PEFT files (``adapter_config.json``,
``adapter_model.safetensors``) and a ``card.yaml`` describing where it came from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AdapterError(ValueError):
    """An adapter cannot be used. ``code`` is one of: invalid_name, not_found, malformed, wrong_base."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class AdapterCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    base_model: str
    base_model_checksum: str
    description: str = ""
    created: str | None = None
    data_sources: list[dict[str, Any]] = []
    hyperparameters: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    command: str | None = None


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise AdapterError(
            "invalid_name",
            f"adapter name {name!r} is not a plain name (letters, digits, '.', '_', '-'; no paths)",
        )
    return name


def adapter_dir(root: Path, name: str) -> Path:
    validate_name(name)
    root = Path(root).resolve()
    d = (root / name).resolve()
    if d.parent != root:  # belt and braces against symlink tricks
        raise AdapterError("invalid_name", f"adapter {name!r} resolves outside {root}")
    if not d.is_dir():
        raise AdapterError("not_found", f"adapter {name!r} not found in {root}")
    return d


def read_card(d: Path) -> AdapterCard:
    card_file = d / "card.yaml"
    if not card_file.exists():
        raise AdapterError("malformed", f"adapter {d.name!r} has no card.yaml")
    try:
        raw = yaml.safe_load(card_file.read_text()) or {}
        return AdapterCard(**raw)
    except (yaml.YAMLError, ValidationError, TypeError) as e:
        raise AdapterError("malformed", f"adapter {d.name!r} has an invalid card.yaml: {e}") from None


def check_files(d: Path) -> dict[str, Any]:
    """Validate the PEFT files without loading weights; returns the adapter_config."""
    cfg_file = d / "adapter_config.json"
    if not cfg_file.exists():
        raise AdapterError("malformed", f"adapter {d.name!r} has no adapter_config.json")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise AdapterError("malformed", f"adapter {d.name!r}: adapter_config.json is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
        raise AdapterError("malformed", f"adapter {d.name!r}: adapter_config.json is not a LoRA config")
    if not any((d / f).exists() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise AdapterError("malformed", f"adapter {d.name!r} has no adapter_model.safetensors")
    return cfg


def load_checked(root: Path, name: str, base_checksum: str | None) -> tuple[Path, AdapterCard, dict]:
    """Everything short of loading weights: name, presence, files, card, and base-model match."""
    d = adapter_dir(root, name)
    card = read_card(d)
    cfg = check_files(d)
    if base_checksum and card.base_model_checksum != base_checksum:
        raise AdapterError(
            "wrong_base",
            f"adapter {name!r} was trained on base {card.base_model} "
            f"(sha256 {card.base_model_checksum[:12]}), but the loaded base has sha256 {base_checksum[:12]}",
        )
    return d, card, cfg


def list_adapters(root: Path) -> list[dict[str, Any]]:
    """Every adapter directory with its card, or the reason it cannot be used."""
    root = Path(root)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entry: dict[str, Any] = {"name": d.name, "path": str(d)}
        try:
            validate_name(d.name)
            entry["card"] = read_card(d).model_dump()
            check_files(d)
            entry["ok"] = True
        except AdapterError as e:
            entry["ok"] = False
            entry["error"] = str(e)
        out.append(entry)
    return out
