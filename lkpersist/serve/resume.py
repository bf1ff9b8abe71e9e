"""Resume credentials: how a browser proves, on its next visit, that it is the participant it was.

lkpersist gives a returning identity its session and its recent conversation back, so the identity a
token is minted for must never be one the browser merely claims. The server mints the identity
(:func:`lkpersist.tokens.new_identity`) and hands the browser a signed *resume credential* naming it;
on the next visit the browser sends the credential back and gets a token for the same identity. A
credential that does not verify — forged, tampered with, expired, signed by another server, or simply
garbage — is answered exactly like no credential at all: with a new identity. Nothing tells the caller
which check failed.

Format (version 1)::

    base64url(payload) "." base64url(HMAC-SHA256(key, payload))      (no padding)
    payload = 0x01 || expiry (8 bytes, big-endian epoch seconds) || identity (UTF-8)

Keys: ``LKPERSIST_RESUME_SECRET`` (at least 32 characters), or, when it is unset, the LiveKit API
secret; either way the signing key is derived with HKDF-SHA256 (``info = "lkpersist resume credential
v1"``), so the raw secret is never the MAC key and the LiveKit secret is not reused as is. Rotation:
put the new secret in ``LKPERSIST_RESUME_SECRET`` and the old one (or several, comma-separated) in
``LKPERSIST_RESUME_SECRET_OLD``; credentials signed with an old secret still verify (and the browser
receives a credential signed with the new one at once), new ones are signed with the new secret only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lkpersist.clock import Clock, SystemClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import validate_identity
from lkpersist.serve.limits import MAX_IDENTITY_BYTES, check_identity

ENV_RESUME_SECRET: Final = "LKPERSIST_RESUME_SECRET"
ENV_RESUME_SECRET_OLD: Final = "LKPERSIST_RESUME_SECRET_OLD"
MIN_SECRET_CHARS: Final = 32
VERSION: Final = 1
_HEADER: Final = struct.Struct(">BQ")
_MAC_BYTES: Final = hashlib.sha256().digest_size
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
MAX_CREDENTIAL_CHARS: Final = 4 * (_HEADER.size + MAX_IDENTITY_BYTES + _MAC_BYTES) // 3 + 8
"""A credential longer than this cannot be one we issued: refused before any decoding."""
RESUME_INFO: Final = b"lkpersist resume credential v1"


def derive_key(secret: str, info: bytes) -> bytes:
    """A 32-byte key for one purpose (``info``) from a server secret (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode("utf-8"))


def resume_secrets(environ: Mapping[str, str], api_secret: str) -> tuple[str, ...]:
    """The secrets credentials are verified with, the signing one first (see the module docstring)."""
    current = environ.get(ENV_RESUME_SECRET, "").strip()
    if current and len(current) < MIN_SECRET_CHARS:
        raise InvalidInputError(
            f"{ENV_RESUME_SECRET} is shorter than {MIN_SECRET_CHARS} characters: generate one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    older = [part.strip() for part in environ.get(ENV_RESUME_SECRET_OLD, "").split(",") if part.strip()]
    return (current or api_secret, *older)


class ResumeSigner:
    """Issues and verifies resume credentials; the first secret signs, every secret verifies."""

    def __init__(self, secrets: Sequence[str], *, ttl: float, clock: Clock | None = None) -> None:
        if not secrets or not all(secrets):
            raise InvalidInputError("resume credentials need a non-empty secret")
        if ttl <= 0:
            raise InvalidInputError("the resume credential lifetime must be positive")
        self._keys = tuple(derive_key(secret, RESUME_INFO) for secret in secrets)
        self._ttl = ttl
        self._clock = clock or SystemClock()

    @property
    def ttl(self) -> float:
        return self._ttl

    def issue(self, identity: str) -> str:
        """A credential for ``identity`` valid for the configured lifetime from now."""
        check_identity(identity)
        expiry = int(self._clock.now() + self._ttl)
        payload = _HEADER.pack(VERSION, expiry) + identity.encode("utf-8")
        return f"{_b64encode(payload)}.{_b64encode(_mac(self._keys[0], payload))}"

    def verify(self, credential: object) -> str | None:
        """The identity ``credential`` names when it is genuine and unexpired; None in every other case."""
        if not isinstance(credential, str) or len(credential) > MAX_CREDENTIAL_CHARS:
            return None
        parts = credential.split(".")
        if len(parts) != 2:
            return None
        payload, mac = _b64decode(parts[0]), _b64decode(parts[1])
        if payload is None or mac is None or not self._signed_by_us(payload, mac):
            return None
        return self._identity_in(payload)

    def _signed_by_us(self, payload: bytes, mac: bytes) -> bool:
        # Every key is tried, whatever the outcome: the time taken does not depend on which one matched.
        matches = [hmac.compare_digest(_mac(key, payload), mac) for key in self._keys]
        return any(matches)

    def _identity_in(self, payload: bytes) -> str | None:
        if len(payload) <= _HEADER.size:
            return None
        version, expiry = _HEADER.unpack_from(payload)
        if version != VERSION or expiry <= self._clock.now():
            return None
        try:
            return check_identity(validate_identity(payload[_HEADER.size:].decode("utf-8")))
        except (UnicodeDecodeError, InvalidInputError):
            return None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, payload, "sha256")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Canonical unpadded base64url only: one string per value, so a credential cannot be re-spelt."""
    if _BASE64URL.fullmatch(text) is None:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


__all__ = [
    "ENV_RESUME_SECRET",
    "ENV_RESUME_SECRET_OLD",
    "MAX_CREDENTIAL_CHARS",
    "MIN_SECRET_CHARS",
    "RESUME_INFO",
    "ResumeSigner",
    "derive_key",
    "resume_secrets",
]
