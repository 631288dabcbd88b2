"""langgraph-checkpoint-conformance against chatdoc's checkpointer on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid

import redis

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from chatdoc.memory.checkpoint import ChatdocRedisSaver


def test_conformance_base_capabilities(redis_server, capsys):
    clients: list[redis.Redis] = []

    @checkpointer_test(name="ChatdocRedisSaver")
    async def factory():
        client = redis.Redis.from_url(redis_server.url, decode_responses=False)
        clients.append(client)
        # a fresh key space per capability suite (and a TTL, as in production)
        yield ChatdocRedisSaver(client, ttl=3600, prefix=f"conf-{uuid.uuid4().hex[:8]}:lg")

    try:
        report = asyncio.run(validate(factory, progress=ProgressCallbacks.verbose()))
    finally:
        for c in clients:
            c.close()
    report.print_report()
    results = report.to_dict()["results"]
    passed = sum(r["tests_passed"] for r in results.values())
    failed = sum(r["tests_failed"] for r in results.values())
    with capsys.disabled():
        print(f"\nconformance: level={report.conformance_level()} tests passed={passed} failed={failed}")
        for name, r in sorted(results.items()):
            print(f"  {name}: detected={r['detected']} passed={r['tests_passed']} failed={r['tests_failed']}")
    for cap in BASE_CAPABILITIES:
        res = results[cap.value]
        assert res["detected"], f"{cap.value} not detected"
        assert res["tests_failed"] == 0, f"{cap.value} failures: {res['failures']}"
    assert report.passed_all_base()
