"""Configuration: defaults from YAML, env overrides, and clear errors."""

import pytest
from typer.testing import CliRunner

from chatdoc.config import ConfigError, load_settings


def test_defaults_come_from_yaml():
    s = load_settings()
    assert s.model.base == "gemma-3-270m"
    assert s.model.quantization == "nf4"


def test_env_overrides_nested_keys(monkeypatch):
    monkeypatch.setenv("CHATDOC_MODEL_QUANTIZATION", "none")
    monkeypatch.setenv("CHATDOC_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CHATDOC_GENERATION_MAX_NEW_TOKENS", "33")
    s = load_settings()
    assert s.model.quantization == "none"
    assert s.redis.url == "redis://127.0.0.1:1/0"
    assert s.generation.max_new_tokens == 33


def test_profile_overlays_default(monkeypatch):
    monkeypatch.setenv("CHATDOC_PROFILE", "gpu")
    s = load_settings()
    assert s.model.device == "cuda" and s.model.quantization == "nf4"


def test_invalid_value_names_key_and_allowed_values(monkeypatch):
    monkeypatch.setenv("CHATDOC_MODEL_QUANTIZATION", "q3")
    with pytest.raises(ConfigError) as e:
        load_settings()
    msg = str(e.value)
    assert "model.quantization" in msg and "nf4" in msg and "int8" in msg and "'q3'" in msg


def test_unknown_key_in_config_file_is_reported(tmp_path, monkeypatch):
    f = tmp_path / "x.yaml"
    f.write_text("model:\n  quantisation: nf4\n")
    monkeypatch.setenv("CHATDOC_CONFIG", str(f))
    with pytest.raises(ConfigError, match="model.quantisation: unknown setting"):
        load_settings()


def test_cli_reports_config_error_in_one_line(monkeypatch):
    import subprocess
    import sys

    env = {"CHATDOC_MODEL_QUANTIZATION": "q3", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "chatdoc.cli", "model", "info"], capture_output=True, text=True, env=env)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "model.quantization" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_cli_help_lists_areas():
    from chatdoc.cli import app

    out = CliRunner().invoke(app, ["--help"]).output
    for cmd in ("model", "generate", "adapters", "eval"):
        assert cmd in out


def test_code_defaults_equal_default_yaml(tmp_path, monkeypatch):
    """One source of truth: configs/default.yaml and the defaults in chatdoc/config.py agree."""
    import chatdoc.config as config

    monkeypatch.delenv("CHATDOC_PROFILE", raising=False)
    monkeypatch.delenv("CHATDOC_CONFIG", raising=False)
    with_yaml = load_settings().model_dump()
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)  # no default.yaml there: code defaults only
    assert load_settings().model_dump() == with_yaml
