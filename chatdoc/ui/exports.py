"""Staff exports held in memory for one download by the staff user who made them.

Exports are never written to disk (nothing to clean up after a crash, nothing for another user or an
anonymous client to fetch). The download link ``/exports/<token>`` works once, for the same logged-in
user, within ``security.export_ttl_seconds``.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass
class Export:
    user: str
    filename: str
    media_type: str
    data: bytes
    session_id: str
    expires: float


class ExportStore:
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._e: dict[str, Export] = {}
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        for t in [t for t, e in self._e.items() if e.expires < now]:
            del self._e[t]

    def put(self, user: str, session_id: str, filename: str, media_type: str, data: bytes) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._prune(now)
            self._e[token] = Export(user, filename, media_type, data, session_id, now + self.ttl_s)
        return token

    def take(self, token: str, user: str | None) -> Export | None:
        """The export, removed (once only); None if unknown, expired or made by another user."""
        now = time.time()
        with self._lock:
            self._prune(now)
            e = self._e.get(token)
            if e is None or user is None or e.user != user:
                return None
            return self._e.pop(token)

    def __len__(self) -> int:
        with self._lock:
            self._prune(time.time())
            return len(self._e)
