"""How personal values are turned into stored text, and back.

Backends pass every personal value (turn payloads, language, metadata and context values) through the
store's codec and nothing else; operational fields (times, counts, connected, expiry) stay plain so that
connect remains one atomic round trip. The default codec stores text unchanged; encryption at rest
plugs in a codec that encrypts (see ``lkpersist encrypt``).
"""

from __future__ import annotations

from typing import Protocol


class ValueCodec(Protocol):
    """Encodes a personal value for storage and decodes it back."""

    def encode(self, plaintext: str) -> str:
        """Return the stored form of ``plaintext``."""
        ...

    def decode(self, stored: str) -> str:
        """Return the plaintext of a stored value; raise DecryptionError when it cannot."""
        ...


class PlainCodec:
    """Stores values as they are."""

    def encode(self, plaintext: str) -> str:
        return plaintext

    def decode(self, stored: str) -> str:
        return stored


PLAIN = PlainCodec()
