"""Consultation index: per-session metadata for listing, plus per-session records.

Keys (``<p>`` = ``settings.redis.key_prefix``, default ``chatdoc``)::

    <p>:session:<id>                 hash: SessionMeta fields (strings; None = field absent)
    <p>:records:<id>                 hash: kind -> JSON document (staff summary, approval, ...)
    <p>:sessions                     sorted set: every session id, score = updated_at
    <p>:sessions:triage:<level>      sorted set per triage level, score = updated_at

The two per-session keys carry the retention TTL (``ttl_days``), refreshed on every update of the
session (``upsert``, ``put_record``). Sorted-set members cannot expire on their own: the
``<p>:sessions`` score is ``updated_at``, so :func:`chatdoc.memory.erase.sweep_expired` finds
sessions idle for longer than the retention and erases them completely (checkpoints included).

``title`` must already be redacted by the caller (the memory package does not see raw text
rules); it is capped at 120 characters.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
from pydantic import BaseModel, field_validator

from chatdoc.domain import LEVELS, PHASES, Level, Phase
from chatdoc.memory.connection import get_redis, on_reset
from chatdoc.memory.errors import guard
from chatdoc.memory.ids import check_session_id

__all__ = ["ConsultationIndex", "SessionMeta", "get_index"]

TITLE_MAX = 120
_KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class SessionMeta(BaseModel):
    """What the staff list shows about one consultation (no raw patient text)."""

    model_config = {"extra": "forbid"}

    id: str
    created_at: float
    updated_at: float
    status: Phase = "consent"
    triage_level: Level = "unknown"
    persona: str | None = None
    adapter: str | None = None
    flagged: bool = False  # needs staff attention
    title: str = ""  # short, REDACTED chief complaint
    approved_by: str | None = None
    approved_at: float | None = None

    @field_validator("title")
    @classmethod
    def _short_title(cls, v: str) -> str:
        v = " ".join(v.split())
        return v if len(v) <= TITLE_MAX else v[: TITLE_MAX - 1] + "…"


_FIELDS = tuple(SessionMeta.model_fields)
_UPDATABLE = frozenset(_FIELDS) - {"id"}


def _encode(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _decode_hash(raw: dict[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = k.decode()
        if key not in _FIELDS:
            continue
        text = v.decode()
        if key == "flagged":
            out[key] = text == "1"
        else:
            out[key] = text  # pydantic coerces floats
    return out


def _as_set(value: str | Iterable[str] | None, allowed: tuple[str, ...], what: str) -> set[str] | None:
    if value is None:
        return None
    values = {value} if isinstance(value, str) else set(value)
    bad = values - set(allowed)
    if bad:
        raise ValueError(f"unknown {what} {sorted(bad)}; allowed: {', '.join(allowed)}")
    return values


class ConsultationIndex:
    """Session metadata + records in Redis. All methods raise ``StorageUnavailable`` when Redis
    cannot be reached and ``ValueError`` for an invalid session id or field value."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "chatdoc", ttl_seconds: int = 30 * 86400):
        self.r = redis_client
        self.prefix = prefix.rstrip(":")
        self.ttl = int(ttl_seconds)

    # -- keys ------------------------------------------------------------------------------

    def key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def records_key(self, session_id: str) -> str:
        return f"{self.prefix}:records:{session_id}"

    @property
    def all_key(self) -> str:
        return f"{self.prefix}:sessions"

    def triage_key(self, level: str) -> str:
        return f"{self.prefix}:sessions:triage:{level}"

    def session_keys(self, session_id: str) -> list[str]:
        """Every per-session key the index owns (checkpoints are the saver's)."""
        return [self.key(session_id), self.records_key(session_id)]

    # -- metadata --------------------------------------------------------------------------

    @guard("index update")
    def upsert(self, session_id: str, **fields: Any) -> SessionMeta:
        """Create or update a session's metadata; returns the stored result.

        ``updated_at`` defaults to now, ``created_at`` to now for a new session. Fields passed
        as ``None`` are removed (e.g. ``approved_by=None``).
        """
        check_session_id(session_id)
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown session field(s): {', '.join(sorted(unknown))}")
        key = self.key(session_id)
        # optimistic lock on the hash: a concurrent upsert (e.g. a re-triage) makes us re-read,
        # so the per-level sorted sets never disagree with the hash
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    existing = _decode_hash(pipe.hgetall(key))
                    meta, to_set, removed = self._plan_upsert(session_id, existing, fields)
                    pipe.multi()
                    pipe.hset(key, mapping=to_set)
                    if removed:
                        pipe.hdel(key, *removed)
                    for level in LEVELS:
                        if level != meta.triage_level:
                            pipe.zrem(self.triage_key(level), session_id)
                    pipe.zadd(self.triage_key(meta.triage_level), {session_id: meta.updated_at})
                    pipe.zadd(self.all_key, {session_id: meta.updated_at})
                    self._expire(pipe, session_id)
                    pipe.execute()
                    return meta
                except redis.WatchError:
                    continue

    @staticmethod
    def _plan_upsert(
        session_id: str, existing: dict[str, Any], fields: dict[str, Any]
    ) -> tuple[SessionMeta, dict[str, bytes], list[str]]:
        now = time.time()
        new = not existing
        merged = {**existing, **{k: v for k, v in fields.items() if v is not None}}
        for k, v in fields.items():
            if v is None:
                merged.pop(k, None)
        merged["id"] = session_id
        merged.setdefault("created_at", now)
        merged["updated_at"] = fields.get("updated_at") or now
        meta = SessionMeta(**merged)  # validates every value before anything is written
        changed = set(fields) | {"updated_at"} | ({"id", "created_at", "status", "triage_level"} if new else set())
        dumped = meta.model_dump()
        to_set: dict[str, bytes] = {}
        for name in changed:
            enc = _encode(dumped[name])
            if enc is not None:
                to_set[name] = enc
        removed = [k for k, v in fields.items() if v is None]
        return meta, to_set, removed

    @guard("index read")
    def get(self, session_id: str) -> SessionMeta | None:
        check_session_id(session_id)
        raw = self.r.hgetall(self.key(session_id))
        return self._meta(raw)

    @guard("index read")
    def exists(self, session_id: str) -> bool:
        check_session_id(session_id)
        return bool(self.r.exists(self.key(session_id)))

    @guard("index list")
    def list(
        self,
        status: str | Iterable[str] | None = None,
        triage: str | Iterable[str] | None = None,
        limit: int = 100,
    ) -> list[SessionMeta]:
        """Sessions, most urgent triage level first, then most recently updated first."""
        statuses = _as_set(status, PHASES, "status")
        levels = _as_set(triage, LEVELS, "triage level")
        out: list[SessionMeta] = []
        if limit <= 0:
            return out
        batch = 200
        for level in LEVELS:
            if levels is not None and level not in levels:
                continue
            start = 0
            while len(out) < limit:
                ids = self.r.zrevrange(self.triage_key(level), start, start + batch - 1)
                if not ids:
                    break
                start += batch
                pipe = self.r.pipeline(transaction=False)
                for sid in ids:
                    pipe.hgetall(self.key(sid.decode()))
                for raw in pipe.execute():
                    meta = self._meta(raw)
                    if meta is None or meta.triage_level != level:
                        continue  # expired (swept later) or moved between levels meanwhile
                    if statuses is not None and meta.status not in statuses:
                        continue
                    out.append(meta)
                    if len(out) >= limit:
                        break
            if len(out) >= limit:
                break
        return out

    @guard("index delete")
    def delete(self, session_id: str) -> int:
        """Remove the session's metadata, records and sorted-set entries; returns keys removed."""
        check_session_id(session_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*self.session_keys(session_id))
        pipe.zrem(self.all_key, session_id)
        for level in LEVELS:
            pipe.zrem(self.triage_key(level), session_id)
        return int(pipe.execute()[0])

    # -- records ---------------------------------------------------------------------------

    @guard("record write")
    def put_record(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        """Store a JSON document beside the session (replaces the previous one of that kind)."""
        check_session_id(session_id)
        self._check_kind(kind)
        if not isinstance(data, dict):
            raise TypeError("record data must be a dict")
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.records_key(session_id), kind, payload.encode())
        self._expire(pipe, session_id)
        pipe.execute()

    @guard("record read")
    def get_record(self, session_id: str, kind: str) -> dict[str, Any] | None:
        check_session_id(session_id)
        self._check_kind(kind)
        raw = self.r.hget(self.records_key(session_id), kind)
        return None if raw is None else json.loads(raw)

    @guard("record read")
    def records(self, session_id: str) -> dict[str, dict[str, Any]]:
        """All records of a session: ``{kind: data}``."""
        check_session_id(session_id)
        raw = self.r.hgetall(self.records_key(session_id))
        return {k.decode(): json.loads(v) for k, v in sorted(raw.items())}

    @guard("record delete")
    def delete_record(self, session_id: str, kind: str) -> bool:
        check_session_id(session_id)
        self._check_kind(kind)
        return bool(self.r.hdel(self.records_key(session_id), kind))

    # -- helpers ---------------------------------------------------------------------------

    def _expire(self, pipe: Any, session_id: str) -> None:
        for k in self.session_keys(session_id):
            pipe.expire(k, self.ttl)  # no-op for a key that does not exist

    @staticmethod
    def _check_kind(kind: str) -> None:
        if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
            raise ValueError("record kind must match [a-z][a-z0-9_.-]{0,63}")

    @staticmethod
    def _meta(raw: dict[bytes, bytes]) -> SessionMeta | None:
        if not raw:
            return None
        return SessionMeta(**_decode_hash(raw))


_index: ConsultationIndex | None = None
_index_lock = threading.Lock()


def get_index() -> ConsultationIndex:
    """Process-wide index on :func:`get_redis` with the configured prefix and retention."""
    global _index
    with _index_lock:
        if _index is None:
            from chatdoc.config import get_settings
            from chatdoc.memory.checkpoint import retention_seconds

            s = get_settings()
            _index = ConsultationIndex(get_redis(), s.redis.key_prefix, retention_seconds(s))
        return _index


@on_reset
def _reset_index() -> None:
    global _index
    with _index_lock:
        _index = None
