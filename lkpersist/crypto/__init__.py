"""Encryption at rest, in one place.

- :mod:`~lkpersist.crypto.codec`: the codec protocol every store uses, the plaintext codecs, the stored form.
- :mod:`~lkpersist.crypto.keys`: where keys come from, their checks and public ids.
- :mod:`~lkpersist.crypto.fernet`: the encrypting codec (Fernet, several keys for rotation).
- :mod:`~lkpersist.crypto.config`: the codec the environment configures (what ``open_store`` uses).
- :mod:`~lkpersist.crypto.identity`: keyed identity hashes.
- :mod:`~lkpersist.crypto.migrate`: status, migration and rotation of a whole store.

Nothing is imported here, so a store that never encrypts never loads ``cryptography``.
"""
