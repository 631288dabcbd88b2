"""Erasure and retention: remove every trace of a consultation.

:func:`delete_session` is the patient's "delete my data": checkpoints (via the saver's
``delete_thread``), the index hash, sorted-set members, records, and, as a safety net, any other
key whose *name* contains the session id (found with SCAN) and any hash field / sorted-set member
in chatdoc's shared keys that names it. Then the server rewrites its AOF (:mod:`chatdoc.memory.aof`):
until then the append-only file on disk still holds every command that wrote the consultation.

:func:`sweep_expired` applies the retention policy to what key TTLs cannot reach (sorted-set
members, the plain saver's thread registry): sessions whose ``updated_at`` is older than
``ttl_days`` or whose index hash has expired are erased completely; then one AOF rewrite, or the
scheduled one (``redis.aof_rewrite_hours``) when it is due. :func:`start_maintenance` runs the sweep
hourly in a daemon thread, so a long-running server applies both without a restart.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from langgraph.checkpoint.base import BaseCheckpointSaver

from chatdoc.domain import LEVELS
from chatdoc.log import logger
from chatdoc.memory.aof import maybe_scheduled_rewrite, rewrite_aof, schedule_key
from chatdoc.memory.errors import guard
from chatdoc.memory.ids import check_session_id, is_valid_session_id

__all__ = ["delete_session", "sweep_expired", "start_maintenance"]

_GLOB_SPECIAL = "*?[]\\"


def _escape_glob(value: str) -> str:
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in value)


def _defaults(
    r: redis.Redis | None, saver: BaseCheckpointSaver | None, index: Any
) -> tuple[redis.Redis, BaseCheckpointSaver, Any]:
    from chatdoc.memory.checkpoint import get_checkpointer
    from chatdoc.memory.connection import get_redis
    from chatdoc.memory.index import get_index

    return (r or get_redis(), saver or get_checkpointer(), index or get_index())


def _scan_keys(r: redis.Redis, session_id: str) -> set[bytes]:
    return set(r.scan_iter(match=f"*{_escape_glob(session_id)}*", count=500))


def _shared_keys(saver: BaseCheckpointSaver, idx: Any) -> list[str]:
    """chatdoc's keys shared by all sessions (their members/fields may name a session)."""
    keys = [idx.all_key] + [idx.triage_key(level) for level in LEVELS]
    threads_key = getattr(saver, "_key_threads", None)
    if callable(threads_key):
        keys.append(threads_key())
    return keys


def _scrub_shared(r: redis.Redis, session_id: str, keys: list[str]) -> int:
    """Remove hash fields / set members naming the session from the shared keys."""
    pattern = f"*{_escape_glob(session_id)}*"
    removed = 0
    for key in keys:
        kind = r.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            fields = [f for f, _ in r.hscan_iter(key, match=pattern)]
            if fields:
                removed += r.hdel(key, *fields)
        elif kind == "zset":
            members = [m for m, _ in r.zscan_iter(key, match=pattern)]
            if members:
                removed += r.zrem(key, *members)
        elif kind == "set":
            members = list(r.sscan_iter(key, match=pattern))
            if members:
                removed += r.srem(key, *members)
    return removed


@guard("erase session")
def delete_session(
    session_id: str,
    *,
    redis_client: redis.Redis | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    index: Any = None,
    purge_disk: bool = True,
) -> int:
    """Erase a consultation everywhere; returns the number of Redis keys removed.

    ``purge_disk``: then rewrite the server's AOF and wait for it, so the files on disk no longer hold
    the consultation (a warning, not a failure, where the server has no AOF or refuses the rewrite;
    :func:`sweep_expired` passes False and rewrites once for all the sessions it erased).
    Idempotent (a second call returns 0, and rewrites again). Raises ``ValueError`` for a malformed id
    and ``StorageUnavailable`` when Redis is down (nothing is half-reported as done: call again).
    """
    check_session_id(session_id)
    r, saver, idx = _defaults(redis_client, checkpointer, index)
    before = _scan_keys(r, session_id)
    saver.delete_thread(session_id)
    idx.delete(session_id)
    leftover = _scan_keys(r, session_id)
    if leftover:
        # e.g. checkpoints whose timeline had already expired, or another saver's layout
        r.delete(*leftover)
        logger.warning("erase: removed {} key(s) left behind by the saver/index", len(leftover))
    fields = _scrub_shared(r, session_id, _shared_keys(saver, idx))
    removed = len(before | leftover)
    purged = rewrite_aof(r) if purge_disk else False
    logger.info("erased session {} keys={} shared_entries={} aof_rewritten={}", session_id, removed, fields, purged)
    return removed


@guard("retention sweep")
def sweep_expired(
    *,
    now: float | None = None,
    redis_client: redis.Redis | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    index: Any = None,
) -> int:
    """Erase sessions idle longer than the retention (or whose index hash expired) and drop
    registry entries of checkpoint threads whose keys have all expired. Returns sessions erased."""
    r, saver, idx = _defaults(redis_client, checkpointer, index)
    now = time.time() if now is None else now
    cutoff = now - idx.ttl
    doomed: set[str] = set()
    for member in r.zrangebyscore(idx.all_key, "-inf", cutoff):
        doomed.add(member.decode())
    for member, _score in r.zscan_iter(idx.all_key):
        sid = member.decode()
        if sid not in doomed and not r.exists(idx.key(sid)):
            doomed.add(sid)
    # checkpoint threads (plain saver registry) whose timeline expired, with no index entry
    threads_key = getattr(saver, "_key_threads", None)
    if callable(threads_key):
        import json

        for field, value in r.hscan_iter(threads_key()):
            try:
                thread = json.loads(value)["thread"]
            except (ValueError, KeyError, TypeError):
                continue
            if not r.exists(field):
                doomed.add(thread)
    erased = 0
    for sid in doomed:
        if is_valid_session_id(sid):
            delete_session(sid, redis_client=r, checkpointer=saver, index=idx, purge_disk=False)
        else:  # not a chatdoc session id: only clear the saver's data for it
            saver.delete_thread(sid)
            r.zrem(idx.all_key, sid)
        erased += 1
    if erased:
        logger.info("retention sweep erased {} session(s)", erased)
        if rewrite_aof(r):
            r.set(schedule_key(idx.prefix), repr(now))  # counts as the scheduled rewrite
    else:
        maybe_scheduled_rewrite(r, now=now, prefix=idx.prefix)
    return erased


_maintenance: threading.Thread | None = None


def start_maintenance(interval_s: float | None = None) -> threading.Thread:
    """Run :func:`sweep_expired` (retention + scheduled AOF rewrite) every ``interval_s`` seconds in a
    daemon thread; once per process. Default: hourly, or every ``redis.aof_rewrite_hours`` if shorter."""
    global _maintenance
    if _maintenance is not None and _maintenance.is_alive():
        return _maintenance
    if interval_s is None:
        from chatdoc.config import get_settings

        hours = get_settings().redis.aof_rewrite_hours
        interval_s = min(3600.0, hours * 3600) if hours > 0 else 3600.0

    def run() -> None:
        while True:
            time.sleep(interval_s)
            try:
                sweep_expired()
            except Exception as e:  # noqa: BLE001 - Redis may be down for a while; try again next time
                logger.warning("maintenance sweep failed: {}", type(e).__name__)

    _maintenance = threading.Thread(target=run, name="chatdoc-maintenance", daemon=True)
    _maintenance.start()
    return _maintenance
