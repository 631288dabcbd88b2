"""The per-deployment pseudonym key.

Placeholder digests are ``HMAC-SHA256(deployment key, session salt || type || value)``. The salt is
stored with the session (in Redis); the key must not be, or a Redis dump alone would let anyone
brute-force small identifier spaces (every date of birth 1900-2025 in ~2 s, phone numbers, NHS
numbers). Sources, first match wins:

1. ``privacy.key`` (``CHATDOC_PRIVACY_KEY``): hex, at least 32 bytes;
2. the file ``privacy.key_file`` (default ``<data_dir>/pseudonym.key``): read if present, otherwise
   created with ``os.urandom(32)`` (hex, mode 0600, parent directory 0700).

Settings are imported lazily so ``chatdoc.privacy`` stays usable as a plain library (pass ``key=``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["KEY_BYTES", "PseudonymKeyError", "deployment_key", "load_or_create_key", "parse_key"]

KEY_BYTES = 32
_lock = threading.Lock()
_cache: dict[tuple[str | None, str], bytes] = {}


class PseudonymKeyError(ValueError):
    """The configured pseudonym key or key file is unusable (message says which and how to fix it)."""


def parse_key(text: str, source: str) -> bytes:
    """Hex text -> key bytes; at least ``KEY_BYTES`` bytes, else :class:`PseudonymKeyError`."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        hint = 'python -c "import os; print(os.urandom(32).hex())"'
        raise PseudonymKeyError(f"{source} is not hex (make one with: {hint})") from None
    if len(key) < KEY_BYTES:
        raise PseudonymKeyError(f"{source} is {len(key)} bytes; at least {KEY_BYTES} are needed")
    return key


def load_or_create_key(path: str | os.PathLike[str], *, private_dir: bool = True) -> bytes:
    """Read the key file, or create it (random, 0600) when absent. ``private_dir``: also make its
    directory 0700 (chatdoc's own data dir; not done for a directory the operator chose).
    Safe against a concurrent creator: the new file is written under a temporary name and linked into
    place, so nobody reads it half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        if private_dir:
            with contextlib.suppress(OSError):
                os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (os.urandom(KEY_BYTES).hex() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic "create if absent"
        except FileExistsError:
            pass  # another process won the race: use its key
        finally:
            tmp.unlink()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    return parse_key(path.read_text(), f"pseudonym key file {path}")


def deployment_key(settings: Any = None) -> bytes:
    """The key for this deployment (cached per configured key / key file)."""
    if settings is None:
        from chatdoc.config import get_settings

        settings = get_settings()
    cfg = settings.privacy
    path = settings.path(cfg.key_file) if cfg.key_file else settings.data_path / "pseudonym.key"
    ident = (cfg.key, str(path))
    with _lock:
        key = _cache.get(ident)
        if key is None:
            if cfg.key:
                key = parse_key(cfg.key, "privacy.key (CHATDOC_PRIVACY_KEY)")
            else:
                key = load_or_create_key(path, private_dir=not cfg.key_file)
            _cache[ident] = key
        return key
