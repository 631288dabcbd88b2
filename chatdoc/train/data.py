"""Training data for the doctor side of a consultation.

Sources (see ``../shared/data/README.md``) are read into :class:`Conversation` objects with cleaned
speaker tags, then every doctor turn becomes one :class:`Sample`: the runtime prompt for that turn
(``chatdoc.llm.prompt.training_pair``: persona system text + preceding turns + ``"Doctor:"``) and the
doctor's words as the completion. Loss is taken on the completion only (see ``chatdoc.train.sft``).

Rules
  * Speaker tags are normalised to ``patient``/``doctor``. MTS-Dialog ``Doctor``/``Doctor_2`` are the
    doctor; ``Patient``, ``Guest_family*`` (relatives answering for the patient) and
    ``Guest_clinician`` (a colleague reporting findings) are the other side of the conversation: they
    are context, never targets. ACI-BENCH ``[doctor]``/``[patient]``/``[patient_guest]`` likewise
    (some ACI tags are swapped in the published data; they are kept as published). Untagged lines
    continue the previous turn; consecutive turns of one side are merged.
  * Context is truncated from the oldest turns so that prompt + completion fit ``max_seq_len`` tokens.
    When a conversation overflows, the context re-anchors at ``anchor_frac * max_seq_len`` tokens, so
    the following targets share one prefix and the trainer can pack them into one sequence
    (``sft.pack_samples``). A single turn + target that still does not fit is dropped (``too_long``).
  * Empty targets and duplicate (prompt, completion) pairs are dropped; evaluation samples win over
    training samples.
  * Splits are by conversation: ``eval`` = MTS-Dialog's own validation split (never trained on; it is
    also what ``chatdoc eval adapter`` uses), ``validation`` = a deterministic ~``val_frac`` share of
    the remaining conversations chosen by a hash of the conversation id, ``train`` = the rest.

JSONL format for ``--jsonl`` (one conversation per line)::

    {"id": "c1", "system": "optional persona text", "turns": [{"role": "patient", "text": "..."},
                                                              {"role": "doctor", "text": "..."}]}

Optional keys: ``"target": "last"`` trains only on the conversation's last turn (it must be a doctor turn; the
earlier turns are context: one sample per conversation, as for the job examples of ``chatdoc.train.tasks``);
``"split": "train"|"validation"`` fixes the conversation's split instead of the hash split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatdoc.jsonl import read_jsonl

from chatdoc.llm.prompt import Turn, training_pair

DEFAULT_SYSTEM = (
    "You are a careful, friendly doctor holding a private consultation with a patient. "
    "Take a clear history first: ask one short question at a time about the problem, its timing, "
    "severity and related symptoms before giving advice. Use plain language, and advise urgent care "
    "when symptoms sound serious."
)

SOURCES: dict[str, dict[str, str]] = {
    "mts": {
        "name": "MTS-Dialog",
        "license": "CC BY 4.0",
        "citation": "Ben Abacha et al., EACL 2023",
        "files": "mts-dialog/MTS-Dialog-TrainingSet.csv, mts-dialog/MTS-Dialog-ValidationSet.csv (eval only)",
    },
    "aci": {
        "name": "ACI-BENCH",
        "license": "CC BY 4.0",
        "citation": "Yim et al., Nature Scientific Data 2023",
        "files": "aci-bench/train.csv, aci-bench/valid.csv",
    },
    "chatdoctor": {
        "name": "ChatDoctor (chatdoctor5k)",
        "license": "Apache-2.0",
        "citation": "Li et al., Cureus 2023",
        "files": "chatdoctor/chatdoctor5k.json",
    },
}


class DataError(ValueError):
    """Training data cannot be read; the message names the file and the problem."""


@dataclass
class Conversation:
    id: str
    source: str
    turns: list[Turn]
    system: str | None = None
    split: str | None = None  # forced split (MTS validation -> "eval"); None = hash split
    target: str = "all"  # "all": every doctor turn is a sample; "last": only the last turn (JSONL "target": "last")


@dataclass
class Sample:
    id: str
    conv_id: str
    source: str
    split: str
    prompt: str
    completion: str
    turn_index: int  # index of the target turn in the conversation
    context_start: int  # first turn kept in the prompt (0 = nothing dropped)
    is_question: bool  # the doctor turn asks something ('?'): history-taking

    @property
    def text(self) -> str:
        return self.prompt + self.completion


@dataclass
class Dataset:
    samples: list[Sample]
    report: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]


# --------------------------------------------------------------------------- persona


def default_system(personas_dir: Path | None = None, persona: str = "gp") -> str:
    """The default persona's ``system`` text (``personas/<persona>.yaml``), else :data:`DEFAULT_SYSTEM`."""
    import yaml

    if personas_dir is None:
        from chatdoc.config import get_settings

        s = get_settings()
        personas_dir = s.path(s.dialogue.personas_dir)
        persona = s.dialogue.default_persona
    f = Path(personas_dir) / f"{persona}.yaml"
    try:
        data = yaml.safe_load(f.read_text()) or {}
        text = data.get("system") if isinstance(data, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip()
    except (OSError, yaml.YAMLError):
        pass
    return DEFAULT_SYSTEM


# --------------------------------------------------------------------------- cleaning

# "Guest_family_2:", "Doctor_2:", "Guest_clinican:" (sic) and one "Guest_family." occur in the published data
_MTS_TAG = re.compile(r"^\s*(doctor|patient|guest[_ ]?famil(?:y|iy)|guest[_ ]?clinic?i?an)[_ ]?\d*\s*(?::|\.(?=\s))\s*", re.I)
_ACI_TAG = re.compile(r"^\s*\[(doctor|patient|patient_guest)\]\s*", re.I)


def _mts_role(tag: str) -> str:
    return "doctor" if tag.lower().startswith("doctor") else "patient"


def detokenize(text: str) -> str:
    """Undo ACI-BENCH's tokenised spacing (``i do n't , um .`` -> ``I don't, um.``)."""
    t = " " + text.strip() + " "
    t = re.sub(r" (n't|'s|'m|'re|'ve|'ll|'d)\b", r"\1", t, flags=re.I)
    t = re.sub(r" ([,.?!;:%)])", r"\1", t)
    t = re.sub(r"([($]) ", r"\1", t)
    t = re.sub(r"\bi\b", "I", t)
    t = re.sub(r"\s+", " ", t).strip()
    # sentence case
    t = re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), t)
    return t


def clean_text(text: str) -> str:
    text = text.replace("\r", " ").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def _merge(turns: Iterable[tuple[str, str]]) -> list[Turn]:
    out: list[Turn] = []
    for role, text in turns:
        text = clean_text(text)
        if not text:
            continue
        if out and out[-1].role == role:
            out[-1] = Turn(role, out[-1].text + " " + text)  # type: ignore[arg-type]
        else:
            out.append(Turn(role, text))  # type: ignore[arg-type]
    return out


def parse_tagged(dialogue: str, tag_re: re.Pattern, role_of: Callable[[str], str]) -> list[Turn]:
    """Speaker-tagged lines -> turns; untagged lines continue the previous turn."""
    raw: list[list[str]] = []
    for line in dialogue.replace("\r", "").split("\n"):
        m = tag_re.match(line)
        if m:
            raw.append([role_of(m.group(1)), line[m.end() :]])
        elif raw:
            raw[-1][1] += " " + line
        # text before the first tag has no speaker: dropped
    return _merge((r, t) for r, t in raw)


# --------------------------------------------------------------------------- loaders


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None


def load_mts(data_dir: Path) -> list[Conversation]:
    d = Path(data_dir) / "mts-dialog"
    out = []
    for fname, split, tag in (("MTS-Dialog-TrainingSet.csv", None, "train"), ("MTS-Dialog-ValidationSet.csv", "eval", "valid")):
        for row in _read_csv(d / fname):
            turns = parse_tagged(row.get("dialogue", ""), _MTS_TAG, _mts_role)
            out.append(Conversation(f"mts-{tag}-{row.get('ID', len(out))}", "mts", turns, split=split))
    return out


def load_aci(data_dir: Path) -> list[Conversation]:
    d = Path(data_dir) / "aci-bench"
    out = []
    for fname in ("train.csv", "valid.csv"):
        for row in _read_csv(d / fname):
            turns = parse_tagged(
                row.get("dialogue", ""), _ACI_TAG, lambda t: "doctor" if t.lower() == "doctor" else "patient"
            )
            turns = [Turn(t.role, detokenize(t.text)) for t in turns]
            out.append(Conversation(f"aci-{row.get('dataset', 'x')}-{row.get('encounter_id', len(out))}", "aci", turns))
    return out


def load_chatdoctor(data_dir: Path, limit: int | None = None) -> list[Conversation]:
    f = Path(data_dir) / "chatdoctor" / "chatdoctor5k.json"
    try:
        rows = json.loads(f.read_text())
    except FileNotFoundError:
        raise DataError(f"data file not found: {f}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{f} is not valid JSON: {e}") from None
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        # `instruction` is a generic "answer as a doctor" line: the persona system text replaces it.
        turns = _merge([("patient", str(row.get("input") or "")), ("doctor", str(row.get("output") or ""))])
        out.append(Conversation(f"chatdoctor-{i}", "chatdoctor", turns))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_jsonl(path: Path) -> list[Conversation]:
    """Conversations in chatdoc's JSONL format (module docstring)."""
    path = Path(path)
    out = []
    for where, obj in read_jsonl(path, DataError, "JSONL file not found"):
        if not isinstance(obj, dict) or not isinstance(obj.get("turns"), list):
            raise DataError(f"{where}: expected an object with a 'turns' list")
        raw = []
        for t in obj["turns"]:
            role = t.get("role") if isinstance(t, dict) else None
            if role not in ("patient", "doctor") or not isinstance(t.get("text"), str):
                raise DataError(f"{where}: each turn needs role 'patient' or 'doctor' and a text string")
            raw.append((role, t["text"]))
        system = obj.get("system")
        if system is not None and not isinstance(system, str):
            raise DataError(f"{where}: 'system' must be a string")
        target = obj.get("target", "all")
        if target not in ("all", "last"):
            raise DataError(f"{where}: 'target' must be 'all' or 'last'")
        split = obj.get("split")
        if split not in (None, "train", "validation"):
            raise DataError(f"{where}: 'split' must be 'train' or 'validation'")
        cid = str(obj.get("id", where.rsplit(":", 1)[1]))  # default: the line number
        out.append(Conversation(f"jsonl-{path.stem}-{cid}", "jsonl", _merge(raw), system=system, split=split,
                                target=target))
    return out


# --------------------------------------------------------------------------- samples


def _hash_frac(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def conversation_samples(
    conv: Conversation,
    system: str,
    count_tokens: Callable[[str], int],
    max_seq_len: int,
    split: str,
    anchor_frac: float = 0.5,
    stats: Counter | None = None,
) -> list[Sample]:
    """One sample per doctor turn (only the last turn when ``conv.target == "last"``), context truncated from the
    oldest turns to fit ``max_seq_len``."""
    stats = stats if stats is not None else Counter()
    system = conv.system if conv.system is not None else system
    out: list[Sample] = []
    start = 0
    last = len(conv.turns) - 1
    for k, turn in enumerate(conv.turns):
        if turn.role != "doctor":
            continue
        if conv.target == "last" and k != last:
            continue
        if not turn.text.strip():
            stats["empty"] += 1
            continue

        def length(a: int) -> int:
            p, c = training_pair(system, conv.turns[a:k], turn.text)
            return count_tokens(p) + count_tokens(c)

        if length(start) > max_seq_len:
            # re-anchor: drop oldest turns until the sample fits well inside the window
            limit = max(0, k - 1)  # always keep the newest turn
            while start < limit and length(start) > max_seq_len * anchor_frac:
                start += 1
            if length(start) > max_seq_len:
                stats["too_long"] += 1
                continue
        prompt, completion = training_pair(system, conv.turns[start:k], turn.text)
        out.append(
            Sample(
                id=f"{conv.id}#{k}",
                conv_id=conv.id,
                source=conv.source,
                split=split,
                prompt=prompt,
                completion=completion,
                turn_index=k,
                context_start=start,
                is_question="?" in turn.text,
            )
        )
    return out


def load_sources(
    data_dir: Path, sources: Sequence[str], jsonl: Sequence[Path] = (), chatdoctor_limit: int | None = None
) -> list[Conversation]:
    convs: list[Conversation] = []
    for src in sources:
        if src == "mts":
            convs += load_mts(data_dir)
        elif src == "aci":
            convs += load_aci(data_dir)
        elif src == "chatdoctor":
            convs += load_chatdoctor(data_dir, chatdoctor_limit)
        else:
            raise DataError(f"unknown source {src!r} (known: {', '.join(SOURCES)}; use --jsonl for your own)")
    for p in jsonl:
        convs += load_jsonl(Path(p))
    if "mts" not in sources:
        # the eval split always comes from MTS-Dialog validation, even when not training on MTS
        convs += [c for c in load_mts(data_dir) if c.split == "eval"]
    return convs


def build_dataset(
    data_dir: Path,
    sources: Sequence[str],
    count_tokens: Callable[[str], int],
    *,
    max_seq_len: int = 448,
    jsonl: Sequence[Path] = (),
    system: str | None = None,
    val_frac: float = 0.05,
    seed: int = 0,
    chatdoctor_limit: int | None = None,
    anchor_frac: float = 0.5,
) -> Dataset:
    """Build samples from the named sources. ``count_tokens`` measures a string in model tokens."""
    system = system if system is not None else default_system()
    convs = load_sources(Path(data_dir), sources, jsonl, chatdoctor_limit)
    per_source: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    samples: list[Sample] = []
    # eval conversations first so that a duplicate is removed from training, never from eval
    convs.sort(key=lambda c: 0 if c.split == "eval" else 1)
    for conv in convs:
        split = conv.split or ("validation" if _hash_frac(conv.id, seed) < val_frac else "train")
        info = per_source.setdefault(
            conv.source,
            {"conversations": Counter(), "samples": Counter(), "dropped": Counter(), **SOURCES.get(conv.source, {})},
        )
        info["conversations"][split] += 1
        stats: Counter = Counter()
        for s in conversation_samples(conv, system, count_tokens, max_seq_len, split, anchor_frac, stats):
            key = (s.prompt, s.completion)
            if key in seen:
                stats["duplicate"] += 1
                continue
            seen.add(key)
            samples.append(s)
            info["samples"][split] += 1
        info["dropped"].update(stats)
    report = {
        "data_dir": str(data_dir),
        "sources": {
            k: {
                **{kk: vv for kk, vv in v.items() if kk not in ("conversations", "samples", "dropped")},
                "license": v.get("license", "as stated by the file's owner"),
                "conversations": dict(v["conversations"]),
                "samples": dict(v["samples"]),
                "dropped": dict(v["dropped"]),
            }
            for k, v in per_source.items()
        },
        "totals": dict(Counter(s.split for s in samples)),
        "question_share": {
            sp: round(sum(s.is_question for s in samples if s.split == sp) / max(1, n), 3)
            for sp, n in Counter(s.split for s in samples).items()
        },
        "max_seq_len": max_seq_len,
        "val_frac": val_frac,
        "seed": seed,
        "system_sha256": hashlib.sha256(system.encode()).hexdigest()[:16],
    }
    return Dataset(samples, report)


def data_sources_for_card(report: dict[str, Any], trained_splits: Sequence[str] = ("train",)) -> list[dict[str, Any]]:
    """Per-source entries for an adapter card: name, license, citation and sample counts."""
    out = []
    for key, v in report.get("sources", {}).items():
        out.append(
            {
                "source": key,
                "name": v.get("name", key),
                "license": v.get("license"),
                "citation": v.get("citation"),
                "files": v.get("files"),
                "train_samples": sum(v["samples"].get(s, 0) for s in trained_splits),
                "validation_samples": v["samples"].get("validation", 0),
                "eval_samples": v["samples"].get("eval", 0),
                "conversations": v.get("conversations", {}),
            }
        )
    return out


def write_jsonl(samples: Iterable[Sample], path: Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")
            n += 1
    return n
