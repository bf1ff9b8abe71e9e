"""Encryption at rest for personal values, with key rotation (Fernet / MultiFernet).

A store encrypts when it is given a :class:`FernetCodec` as its ``codec`` (see :mod:`lkpersist.codec`):
every personal value (turn payloads, language, metadata and context values) is then stored as::

    enc:v1:<kid>:<Fernet token>

``kid`` is a short, stable fingerprint of the key that encrypted the value (the first 8 hex digits of an
HMAC-SHA256 keyed with that key); it reveals nothing usable about the key, but it lets ``encrypt status``
count values per key and ``encrypt rotate`` find the ones an old key still protects. Operational fields
(times, counts, connected, expiry) are not personal and stay plain so connect remains one round trip.

Keys: the first key encrypts, every key decrypts, so a rotation is "put the new key first, rotate, drop
the old key". They come from ``LKPERSIST_ENCRYPTION_KEYS`` (comma-separated) or from a key file named by
``LKPERSIST_ENCRYPTION_KEY_FILE`` (one key per line, ``#`` comments and blank lines allowed), never both.

During a migration a value without the ``enc:`` marker is plaintext and is returned as it is, unless the
codec is strict. Anything that carries the marker but cannot be decrypted (unknown key id, tampered,
truncated) raises :class:`~lkpersist.exceptions.DecryptionError`: never an empty value, never a guess.
Messages name the key id, never a key or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lkpersist.codec import ValueCodec
from lkpersist.exceptions import DecryptionError, InvalidInputError
from lkpersist.logsafe import register_secret, register_secrets

ENV_KEYS: Final = "LKPERSIST_ENCRYPTION_KEYS"
ENV_KEY_FILE: Final = "LKPERSIST_ENCRYPTION_KEY_FILE"
ENV_STRICT: Final = "LKPERSIST_ENCRYPTION_STRICT"
ENV_IDENTITY_KEY: Final = "LKPERSIST_IDENTITY_KEY"

FORMAT_VERSION: Final = "v1"
MARKER: Final = "enc:"
_PREFIX: Final = f"{MARKER}{FORMAT_VERSION}:"
_ENCRYPTED_FORM = re.compile(r"^enc:v\d+:")
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}=")
_KID_LABEL: Final = b"lkpersist key id v1"
_IDENTITY_INFO: Final = b"lkpersist identity hash v1"
_MIN_IDENTITY_KEY_CHARS: Final = 32
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})

Classification = Literal["plaintext", "undecryptable"] | str
"""``"plaintext"``, ``"undecryptable"``, or the key id that encrypted the value."""


# --- keys ----------------------------------------------------------------------------------------


def generate_key() -> str:
    """Return a new random Fernet key (url-safe base64 text), as ``lkpersist encrypt keygen`` prints."""
    return Fernet.generate_key().decode("ascii")


def key_id(key: str) -> str:
    """The short public fingerprint of ``key`` recorded in each value it encrypts."""
    return hmac.new(key.encode("ascii"), _KID_LABEL, hashlib.sha256).hexdigest()[:8]


def parse_keys(text: str, source: str) -> list[str]:
    """Split comma- or newline-separated keys, dropping blanks and ``#`` comments; validate each.

    ``source`` names where the text came from (an env variable or a file) for the error message,
    which never contains the key itself.
    """
    keys: list[str] = []
    entries = [e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(",")]
    for position, entry in enumerate((e for e in entries if e), start=1):
        _check_key(entry, source, position)
        if entry not in keys:
            keys.append(entry)
    return keys


def _check_key(entry: str, source: str, position: int) -> None:
    # The strict shape first: base64 decoding alone skips stray characters, and two spellings of one
    # key would get two key ids.
    raw = b""
    if _KEY_SHAPE.fullmatch(entry):
        try:
            raw = base64.urlsafe_b64decode(entry.encode("ascii"))
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != 32:
        raise InvalidInputError(
            f"{source}: key #{position} is not a Fernet key (32 url-safe base64 bytes; "
            "make one with `lkpersist encrypt keygen`)"
        )


def read_key_file(path: str | os.PathLike[str]) -> list[str]:
    """Keys from a key file: one per line, comments and blank lines allowed. The path may be shown."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise InvalidInputError(f"cannot read key file {os.fspath(path)!r}: {type(exc).__name__}") from exc
    return parse_keys(text, f"key file {os.fspath(path)!r}")


def keys_from_env(
    environ: Mapping[str, str] | None = None, key_file: str | os.PathLike[str] | None = None
) -> list[str]:
    """The configured keys, first (encrypting) key first; ``[]`` when encryption is not configured.

    ``key_file`` (a CLI option) overrides ``LKPERSIST_ENCRYPTION_KEY_FILE``. Keys in the environment and
    a key file at once are refused: which key encrypts must never be a guess.
    """
    env = os.environ if environ is None else environ
    listed = env.get(ENV_KEYS, "").strip()
    file_path = key_file or env.get(ENV_KEY_FILE, "").strip() or None
    if listed and file_path:
        raise InvalidInputError(f"set {ENV_KEYS} or a key file ({ENV_KEY_FILE}), not both")
    if file_path:
        keys = read_key_file(file_path)
        if not keys:
            raise InvalidInputError(f"key file {os.fspath(file_path)!r} contains no keys")
        return keys
    return parse_keys(listed, ENV_KEYS) if listed else []


def strict_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``LKPERSIST_ENCRYPTION_STRICT=1`` refuses plaintext values instead of passing them through."""
    env = os.environ if environ is None else environ
    return env.get(ENV_STRICT, "").strip().lower() in _TRUE_WORDS


# --- the codec -----------------------------------------------------------------------------------


def is_encrypted_form(stored: str) -> bool:
    """True when ``stored`` carries the ``enc:v<N>:`` marker, whether or not it can be decrypted."""
    return _ENCRYPTED_FORM.match(stored) is not None


class FernetCodec:
    """A :class:`~lkpersist.codec.ValueCodec` that encrypts with the first key and decrypts with any.

    ``strict=True`` refuses plaintext values (after a completed migration); otherwise they are read as
    they are, so a store can be switched to encryption before ``encrypt migrate`` has run.
    """

    def __init__(self, keys: Sequence[str], *, strict: bool = False) -> None:
        checked = parse_keys(",".join(keys), "encryption keys") if keys else []
        if not checked:
            raise InvalidInputError("encryption needs at least one key")
        register_secrets(checked)
        self._fernets: dict[str, Fernet] = {}
        for key in checked:
            kid = key_id(key)
            if kid in self._fernets:
                raise InvalidInputError(f"two different keys share the key id {kid}: generate a new key")
            self._fernets[kid] = Fernet(key)
        self.primary_kid: str = key_id(checked[0])
        self.strict = strict
        self._multi = MultiFernet(list(self._fernets.values()))
        self._first_key = checked[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured key ids, the encrypting one first."""
        return tuple(self._fernets)

    def __repr__(self) -> str:
        return f"FernetCodec(key_ids={list(self.key_ids)!r}, strict={self.strict})"

    def encode(self, plaintext: str) -> str:
        token = self._multi.encrypt(plaintext.encode("utf-8")).decode("ascii")
        return f"{_PREFIX}{self.primary_kid}:{token}"

    def decode(self, stored: str) -> str:
        if not is_encrypted_form(stored):
            if self.strict:
                raise DecryptionError(unreadable_reason(None))
            return stored
        kid, token = _split(stored)
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise DecryptionError(unreadable_reason(kid))
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError) as exc:
            raise DecryptionError(
                f"value encrypted with key id {kid} failed authentication (tampered or truncated)"
            ) from exc

    # --- status and rotation -------------------------------------------------------------------

    def classify(self, stored: str) -> Classification:
        """``"plaintext"``, the key id that encrypted ``stored``, or ``"undecryptable"``."""
        if not is_encrypted_form(stored):
            return "plaintext"
        try:
            self.decode(stored)
        except DecryptionError:
            return "undecryptable"
        return _split(stored)[0]

    def needs_rotation(self, stored: str) -> bool:
        """True for plaintext and for values under any key but the first (undecryptable ones raise)."""
        if not is_encrypted_form(stored):
            return True
        kid, _ = _split(stored)
        if kid == self.primary_kid:
            return False
        self.decode(stored)
        return True

    def reencrypt(self, stored: str) -> str:
        """``stored`` under the first key; unchanged when it already is (so a rerun is a no-op).

        Plaintext is encrypted even in non-strict mode: this is what ``encrypt migrate`` writes back.
        """
        if not self.needs_rotation(stored):
            return stored
        return self.encode(self.decode(stored) if is_encrypted_form(stored) else stored)

    def identity_hasher(self, environ: Mapping[str, str] | None = None) -> IdentityHasher:
        """The identity hasher for this configuration (``LKPERSIST_IDENTITY_KEY`` or the first key)."""
        env = os.environ if environ is None else environ
        separate = env.get(ENV_IDENTITY_KEY, "").strip()
        return IdentityHasher(separate) if separate else IdentityHasher.from_encryption_key(self._first_key)


@dataclass(frozen=True)
class ReadableForms:
    """Which stored forms a codec can decode, judged from the ``enc:v1:<kid>:`` header alone.

    A backend that must refuse *before* writing (Redis connect runs its Lua mutation and decodes the
    reply afterwards) checks stored values against this, without decrypting anything.
    """

    plaintext: bool
    key_ids: tuple[str, ...]


def readable_forms(codec: ValueCodec) -> ReadableForms | None:
    """What ``codec`` can read; None for a codec that does not encrypt and reads anything as text."""
    if isinstance(codec, FernetCodec):
        return ReadableForms(plaintext=not codec.strict, key_ids=codec.key_ids)
    if isinstance(codec, PlainGuardCodec):
        return ReadableForms(plaintext=True, key_ids=())
    return None


def unreadable_reason(kid: str | None, *, keys_configured: bool = True) -> str:
    """The one wording of "this stored value cannot be read", by what its header says.

    ``kid`` is the key id from the header, or None for a plaintext value met by a strict codec.
    """
    if kid is None:
        return "value is not encrypted and strict encryption is on"
    if not keys_configured:
        return f"value is encrypted but no encryption key is configured (set {ENV_KEYS} or a key file)"
    return f"value was encrypted with key id {kid}, which is not among the configured keys"


def _split(stored: str) -> tuple[str, str]:
    """``(kid, token)`` of an encrypted-form value; a malformed one is a DecryptionError."""
    parts = stored.split(":", 3)
    if len(parts) != 4 or parts[1] != FORMAT_VERSION or not re.fullmatch(r"[0-9a-f]{8}", parts[2]):
        raise DecryptionError(
            f"encrypted value has an unsupported or damaged header (expected {_PREFIX}<key id>:<token>)"
        )
    return parts[2], parts[3]


class PlainGuardCodec:
    """Stores plaintext, like ``PLAIN``, but refuses to hand back an encrypted value as if it were text.

    This is what a store gets when no key is configured: reading encrypted data without a key is the
    "missing key" error (exit 3), not a session whose language is ``enc:v1:...``.
    """

    def encode(self, plaintext: str) -> str:
        return plaintext

    def decode(self, stored: str) -> str:
        if is_encrypted_form(stored):
            raise DecryptionError(unreadable_reason("", keys_configured=False))
        return stored


PLAIN_GUARD = PlainGuardCodec()


def codec_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    strict: bool | None = None,
) -> ValueCodec:
    """The codec the configuration asks for: a FernetCodec when keys are configured, else PLAIN_GUARD.

    ``strict`` (else ``LKPERSIST_ENCRYPTION_STRICT``) without any key is a configuration error.
    """
    keys = keys_from_env(environ, key_file)
    strict = strict_from_env(environ) if strict is None else strict
    if not keys:
        if strict:
            raise InvalidInputError(f"{ENV_STRICT} is set but no key is configured (set {ENV_KEYS})")
        return PLAIN_GUARD
    return FernetCodec(keys, strict=strict)


# --- identity hashing (optional; for key names and index columns) --------------------------------


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


__all__ = [
    "ENV_IDENTITY_KEY",
    "ENV_KEYS",
    "ENV_KEY_FILE",
    "ENV_STRICT",
    "PLAIN_GUARD",
    "Classification",
    "FernetCodec",
    "IdentityHasher",
    "PlainGuardCodec",
    "ReadableForms",
    "codec_from_env",
    "generate_key",
    "is_encrypted_form",
    "key_id",
    "keys_from_env",
    "parse_keys",
    "read_key_file",
    "readable_forms",
    "strict_from_env",
    "unreadable_reason",
]
