"""Keyed hashes of identities, so a dump of key names or an index does not list who came."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lkpersist.crypto import ENV_IDENTITY_KEY
from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import register_secret

_IDENTITY_INFO: Final = b"lkpersist identity hash v1"
_MIN_IDENTITY_KEY_CHARS: Final = 32


class IdentityHasher:
    """HMAC-SHA256 of an identity, so a dump of key names or an index does not list who came.

    Prefer a separate ``LKPERSIST_IDENTITY_KEY``: the hash must stay the same across key rotations,
    and a hash derived from the first encryption key changes when that key does.
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < _MIN_IDENTITY_KEY_CHARS:
            raise InvalidInputError(
                f"{ENV_IDENTITY_KEY} must be at least {_MIN_IDENTITY_KEY_CHARS} characters "
                "(e.g. the output of `lkpersist encrypt keygen`)"
            )
        register_secret(secret)
        self._key = secret.encode("utf-8")

    @classmethod
    def from_encryption_key(cls, key: str) -> IdentityHasher:
        """Derive the hashing key from an encryption key (HKDF), never reusing the key itself."""
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_IDENTITY_INFO).derive(
            key.encode("ascii")
        )
        return cls(base64.urlsafe_b64encode(derived).decode("ascii"))

    def __repr__(self) -> str:
        return "IdentityHasher(<secret>)"

    def digest(self, identity: str) -> str:
        """32 lowercase hex digits (128 bits): safe in Redis hash tags, SCAN patterns and SQL."""
        return hmac.new(self._key, identity.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
