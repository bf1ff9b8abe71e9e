"""Encryption at rest, in one place.

- :mod:`~lkpersist.crypto.codec`: the codec protocol every store uses, the plaintext codecs, the stored form.
- :mod:`~lkpersist.crypto.keys`: where keys come from, their checks and public ids.
- :mod:`~lkpersist.crypto.fernet`: the encrypting codec (Fernet, several keys for rotation).
- :mod:`~lkpersist.crypto.config`: the codec the environment configures (what ``open_store`` uses).
- :mod:`~lkpersist.crypto.identity`: keyed identity hashes.
- :mod:`~lkpersist.crypto.migrate`: status, migration and rotation of a whole store.

Nothing is imported here, so a store that never encrypts never loads ``cryptography``; the environment
variables that configure encryption are named here, so the CLI can declare its options without loading
anything (``keys`` re-exports them).
"""

from typing import Final

ENV_KEYS: Final = "LKPERSIST_ENCRYPTION_KEYS"
ENV_KEY_FILE: Final = "LKPERSIST_ENCRYPTION_KEY_FILE"
ENV_STRICT: Final = "LKPERSIST_ENCRYPTION_STRICT"
ENV_IDENTITY_KEY: Final = "LKPERSIST_IDENTITY_KEY"

__all__ = ["ENV_IDENTITY_KEY", "ENV_KEYS", "ENV_KEY_FILE", "ENV_STRICT"]
