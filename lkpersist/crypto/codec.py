"""How personal values are turned into stored text, and back; the stored form of an encrypted value.

Backends pass every personal value (turn payloads, language, metadata and context values) through the
store's codec and nothing else; operational fields (times, counts, connected, expiry) stay plain so that
connect remains one atomic round trip. :data:`PLAIN` stores text unchanged, :data:`PLAIN_GUARD` (what a
store gets when no key is configured) also refuses to show an encrypted value as text, and
:class:`~lkpersist.crypto.fernet.FernetCodec` encrypts. An encrypted value is stored as
``enc:v1:<kid>:<Fernet token>`` whichever codec reads it.
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from lkpersist.crypto import ENV_KEYS
from lkpersist.exceptions import DecryptionError

FORMAT_VERSION: Final = "v1"
MARKER: Final = "enc:"
ENCRYPTED_PREFIX: Final = f"{MARKER}{FORMAT_VERSION}:"
_ENCRYPTED_FORM = re.compile(r"^enc:v\d+:")


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


def is_encrypted_form(stored: str) -> bool:
    """True when ``stored`` carries the ``enc:v<N>:`` marker, whether or not it can be decrypted."""
    return stored.startswith(MARKER) and _ENCRYPTED_FORM.match(stored) is not None


def unreadable_reason(kid: str | None, *, keys_configured: bool = True) -> str:
    """The one wording of "this stored value cannot be read", by what its header says.

    ``kid`` is the key id from the header, or None for a plaintext value met by a strict codec.
    """
    if kid is None:
        return "value is not encrypted and strict encryption is on"
    if not keys_configured:
        return f"value is encrypted but no encryption key is configured (set {ENV_KEYS} or a key file)"
    return f"value was encrypted with key id {kid}, which is not among the configured keys"


def split_encrypted(stored: str) -> tuple[str, str]:
    """``(kid, token)`` of an encrypted-form value; a malformed one is a DecryptionError."""
    parts = stored.split(":", 3)
    if len(parts) != 4 or parts[1] != FORMAT_VERSION or not re.fullmatch(r"[0-9a-f]{8}", parts[2]):
        raise DecryptionError(
            f"encrypted value has an unsupported or damaged header (expected {ENCRYPTED_PREFIX}<key id>:<token>)"
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
        if stored.startswith(MARKER) and is_encrypted_form(stored):  # the cheap test first: called per value
            raise DecryptionError(unreadable_reason("", keys_configured=False))
        return stored


PLAIN_GUARD = PlainGuardCodec()
