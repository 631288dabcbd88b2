"""Keep erased and expired consultations off the disk: AOF rewrites.

Deleting a key in Redis does not remove it from the append-only file: the AOF still holds every
command that wrote it (the session id hundreds of times, transcript text) until the file is rewritten
from the current data set. So:

* :func:`rewrite_aof` runs ``BGREWRITEAOF`` and waits for it; erasure calls it. Redis 7 (multi-part AOF,
  ``appendonlydir/``) then deletes the old base and incremental files itself (``aof-disable-auto-gc no``,
  the default); Redis 6 replaces its single file.
* :func:`maybe_scheduled_rewrite` does it every ``redis.aof_rewrite_hours`` (expired keys leave their
  history in the AOF too). The time of the last one is kept in ``<prefix>:maint:aof_rewrite_at`` (a
  timestamp, no patient data), so several chatdoc processes share one schedule.

On a Redis that refuses ``BGREWRITEAOF`` (ACL, renamed command) or runs without AOF, a warning is
logged and erasure goes on: the keys are gone, only that server's own files may lag.
"""

from __future__ import annotations

import time

import redis

from chatdoc.log import logger
from chatdoc.memory.errors import describe

__all__ = ["rewrite_aof", "maybe_scheduled_rewrite", "schedule_key"]


def _persistence(client: redis.Redis) -> dict:
    return client.info("persistence")


def _busy(info: dict) -> bool:
    return bool(int(info.get("aof_rewrite_in_progress", 0)) or int(info.get("aof_rewrite_scheduled", 0)))


def _wait_idle(client: redis.Redis, deadline: float, poll: float, started_after: int | None = None) -> dict | None:
    """Poll until no rewrite runs or is scheduled (and, on Redis >= 7, the rewrite counter passed
    ``started_after``, i.e. ours has run). Returns the last INFO, or None on timeout."""
    while True:
        info = _persistence(client)
        count = info.get("aof_rewrites")
        ours_ran = started_after is None or count is None or int(count) > started_after
        if not _busy(info) and ours_ran:
            return info
        if time.monotonic() > deadline:
            return None
        time.sleep(poll)


def rewrite_aof(client: redis.Redis, *, wait: bool = True, timeout: float = 60.0, poll: float = 0.05) -> bool:
    """Rewrite the server's AOF from its current data; True when done (``wait``) or started.

    A rewrite already in progress may have begun before the caller's deletes, so it is waited out and
    a new one started. False (with a warning) when the server has no AOF, refuses the command, the
    rewrite failed, or it did not finish within ``timeout`` (it then still completes in the background).
    Connection errors propagate (the caller's ``guard`` turns them into ``StorageUnavailable``).
    """
    deadline = time.monotonic() + timeout
    try:
        info = _persistence(client)
        if not int(info.get("aof_enabled", 0)):
            logger.warning(
                "redis runs without AOF: erased data may stay in its RDB snapshot until the next save",
            )
            return False
        while True:
            before = info.get("aof_rewrites")
            try:
                client.bgrewriteaof()  # "started", or "scheduled" while an RDB save runs
                break
            except redis.ResponseError as e:
                if "already in progress" not in str(e):
                    raise
                if not wait:
                    logger.debug("aof rewrite already in progress; not waiting")
                    return False
                idle = _wait_idle(client, deadline, poll)
                if idle is None:
                    logger.warning("aof rewrite: a running rewrite did not finish within {:.0f} s", timeout)
                    return False
                info = idle
        if not wait:
            return True
        done = _wait_idle(client, deadline, poll, None if before is None else int(before))
        if done is None:
            logger.warning("aof rewrite did not finish within {:.0f} s; it goes on in the background", timeout)
            return False
        if done.get("aof_last_bgrewrite_status", "ok") != "ok":
            logger.warning("aof rewrite failed on the redis server (see its log); erased data may stay on disk")
            return False
        return True
    except redis.ResponseError as e:  # NOPERM, unknown/renamed command, INFO refused...
        logger.warning(
            "redis refused the AOF rewrite ({}): erased data stays in that server's files until it "
            "rewrites them itself",
            describe(e),
        )
        return False


def schedule_key(prefix: str | None = None) -> str:
    if prefix is None:
        from chatdoc.config import get_settings

        prefix = get_settings().redis.key_prefix
    return f"{prefix}:maint:aof_rewrite_at"


def maybe_scheduled_rewrite(
    client: redis.Redis | None = None,
    *,
    now: float | None = None,
    hours: float | None = None,
    wait: bool = False,
    prefix: str | None = None,
) -> bool:
    """Rewrite the AOF if the last rewrite is older than ``redis.aof_rewrite_hours`` (0 = never).

    Returns True when a rewrite was started (or done, with ``wait``). Nothing waits by default: this
    runs at start-up and from the maintenance thread, where nobody needs the result.
    """
    if hours is None:
        from chatdoc.config import get_settings

        hours = get_settings().redis.aof_rewrite_hours
    if hours <= 0:
        return False
    if client is None:
        from chatdoc.memory.connection import get_redis

        client = get_redis()
    now = time.time() if now is None else now
    key = schedule_key(prefix)
    last = client.get(key)
    try:
        if last is not None and now - float(last) < hours * 3600:
            return False
    except ValueError:
        pass  # junk in the key: rewrite and overwrite it
    if not rewrite_aof(client, wait=wait):
        return False
    client.set(key, repr(now))
    logger.info("scheduled aof rewrite (every {:g} h)", hours)
    return True
