"""Dump every key and value of a Redis database, decoding base64 payloads inside JSON envelopes, so
tests can assert that no raw identifier is stored anywhere (used by the privacy and dialogue tests)."""

from __future__ import annotations

import base64
import binascii
import json


def expand(value: bytes) -> list[bytes]:
    """The value plus any base64 payloads inside JSON envelopes ({"t": "msgpack", "d": "..."}), decoded,
    so a raw identifier cannot hide behind the serializer's encoding."""
    out = [value]
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return out
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack += list(x.values())
        elif isinstance(x, list):
            stack += x
        elif isinstance(x, str) and len(x) >= 8:
            try:
                out.append(base64.b64decode(x, validate=True))
            except (ValueError, binascii.Error):
                pass
    return out


def dump_all(client) -> bytes:
    out = []
    for key in client.scan_iter(count=500):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
        else:
            out.append(client.dump(key) or b"")
    return b"\n".join(part for v in out for part in expand(v))
