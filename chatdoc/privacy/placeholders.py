"""Session-consistent typed placeholders without keeping the original values.

``PlaceholderState`` lives in the dialogue state (JSON). It holds a random per-session salt, the
per-type counters and ``HMAC-SHA256(deployment key, salt || type || normalised value) -> placeholder``.
The same value in a later message of the same session gets the same placeholder; another session
(another salt) gets unrelated digests. The raw value is never stored, so the state cannot be turned
back into text.

The deployment key (:mod:`chatdoc.privacy.keys`) is kept out of the stored state on purpose: with the
salt alone, a dump of the state lets anyone test guesses, and small spaces (dates of birth, phone and
NHS numbers) fall to brute force in seconds. Without the key the digests cannot be tested at all;
whoever holds the key *and* a state can still test a guess, so the key is a secret (docs/PRIVACY.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from pydantic import BaseModel, Field

PLACEHOLDER_RX = re.compile(r"<([A-Z][A-Z_]*?)_(\d+)>")
_DIGITS_ONLY_TYPES = {"PHONE", "SSN", "NHS_NUMBER", "MRN", "INSURANCE_ID", "POSTCODE", "IP_ADDRESS", "DOB", "AGE"}


def normalize_value(entity_type: str, value: str) -> str:
    """Canonical form so "07700 900123" == "07700900123" and "Sarah" == "sarah's"."""
    v = unicodedata.normalize("NFKC", value).casefold().strip()
    if entity_type in _DIGITS_ONLY_TYPES:
        return re.sub(r"[^0-9a-z]", "", v)
    if entity_type == "PERSON":
        v = re.sub(r"['’]s$", "", v)
    return re.sub(r"\s+", " ", v).strip(" .,;:")


class PlaceholderState(BaseModel):
    """Per-session placeholder bookkeeping. JSON-serialisable; holds no raw identifier."""

    salt: str = Field(description="random hex salt for this session")
    counters: dict[str, int] = Field(default_factory=dict)
    digests: dict[str, str] = Field(default_factory=dict, description="hmac hex -> placeholder")

    @classmethod
    def new(cls) -> "PlaceholderState":
        return cls(salt=secrets.token_hex(16))

    def digest(self, entity_type: str, value: str, key: bytes | None = None) -> str:
        """Keyed digest of a value; ``key`` defaults to the deployment key (never stored in the state)."""
        if key is None:
            from chatdoc.privacy.keys import deployment_key

            key = deployment_key()
        # the salt has a fixed length (16 bytes), so salt || type || value is unambiguous
        msg = bytes.fromhex(self.salt) + f"{entity_type}\x1f{normalize_value(entity_type, value)}".encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]

    def placeholder_for(self, entity_type: str, value: str, key: bytes | None = None) -> str:
        """Existing placeholder for this value, or the next ``<TYPE_n>`` (mutates the state)."""
        d = self.digest(entity_type, value, key)
        ph = self.digests.get(d)
        if ph is None:
            n = self.counters.get(entity_type, 0) + 1
            self.counters[entity_type] = n
            ph = f"<{entity_type}_{n}>"
            self.digests[d] = ph
        return ph
