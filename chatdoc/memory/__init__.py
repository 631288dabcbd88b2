"""chatdoc.memory: Redis connection (+ embedded server), LangGraph checkpointer, consultation
index and records, retention and erasure.

Quick use::

    from chatdoc.memory import get_checkpointer, get_index, new_session_id, delete_session
    sid = new_session_id()
    graph = builder.compile(checkpointer=get_checkpointer())
    graph.invoke(state, {"configurable": {"thread_id": sid}})
    get_index().upsert(sid, status="history", triage_level="routine", title="[REDACTED] cough")
    delete_session(sid)   # every trace gone

Failures to reach Redis raise :class:`StorageUnavailable` (a ``RuntimeError``).
``health()`` reports storage health for ``/healthz`` (and restarts a dead embedded server).
"""

from chatdoc.memory.aof import maybe_scheduled_rewrite, rewrite_aof
from chatdoc.memory.checkpoint import ChatdocRedisSaver, get_checkpointer, retention_seconds
from chatdoc.memory.connection import ensure_server, get_redis, health, redis_url, reset_connection
from chatdoc.memory.erase import delete_session, start_maintenance, sweep_expired
from chatdoc.memory.errors import StorageUnavailable
from chatdoc.memory.ids import is_valid_session_id, new_session_id
from chatdoc.memory.index import ConsultationIndex, SessionMeta, get_index
from chatdoc.memory.server import EmbeddedRedis, EmbeddedRedisError, exit_on_sigterm

__all__ = [
    "get_redis",
    "redis_url",
    "ensure_server",
    "reset_connection",
    "health",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "exit_on_sigterm",
    "rewrite_aof",
    "maybe_scheduled_rewrite",
    "start_maintenance",
    "get_checkpointer",
    "ChatdocRedisSaver",
    "retention_seconds",
    "ConsultationIndex",
    "SessionMeta",
    "get_index",
    "delete_session",
    "sweep_expired",
    "new_session_id",
    "is_valid_session_id",
    "StorageUnavailable",
]
