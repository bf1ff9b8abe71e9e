"""Encryption at rest for personal values, with key rotation (Fernet / MultiFernet).

A store encrypts when it is given a :class:`FernetCodec` as its ``codec`` (see
:mod:`lkpersist.crypto.codec`): every personal value (turn payloads, language, metadata and context
values) is then stored as ``enc:v1:<kid>:<Fernet token>``, ``kid`` naming the key that encrypted it
(:func:`lkpersist.crypto.keys.key_id`), so ``encrypt status`` can count values per key and ``encrypt
rotate`` find the ones an old key still protects.

During a migration a value without the ``enc:`` marker is plaintext and is returned as it is, unless the
codec is strict. Anything that carries the marker but cannot be decrypted (unknown key id, tampered,
truncated) raises :class:`~lkpersist.exceptions.DecryptionError`: never an empty value, never a guess.
Messages name the key id, never a key or a plaintext.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from lkpersist.crypto import ENV_IDENTITY_KEY
from lkpersist.crypto.codec import (
    ENCRYPTED_PREFIX,
    PlainGuardCodec,
    ValueCodec,
    is_encrypted_form,
    split_encrypted,
    unreadable_reason,
)
from lkpersist.crypto.identity import IdentityHasher
from lkpersist.crypto.keys import key_id, parse_keys
from lkpersist.exceptions import DecryptionError, InvalidInputError
from lkpersist.logsafe import register_secrets

Classification = Literal["plaintext", "undecryptable"] | str
"""``"plaintext"``, ``"undecryptable"``, or the key id that encrypted the value."""


class FernetCodec:
    """A :class:`~lkpersist.crypto.codec.ValueCodec` that encrypts with the first key and decrypts with any.

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
        return f"{ENCRYPTED_PREFIX}{self.primary_kid}:{token}"

    def decode(self, stored: str) -> str:
        if not is_encrypted_form(stored):
            if self.strict:
                raise DecryptionError(unreadable_reason(None))
            return stored
        kid, token = split_encrypted(stored)
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
        return split_encrypted(stored)[0]

    def needs_rotation(self, stored: str) -> bool:
        """True for plaintext and for values under any key but the first (undecryptable ones raise)."""
        if not is_encrypted_form(stored):
            return True
        kid, _ = split_encrypted(stored)
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
