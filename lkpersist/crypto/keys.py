"""Encryption keys: where they come from, how they are checked, and their public fingerprints.

Keys come from ``LKPERSIST_ENCRYPTION_KEYS`` (comma-separated) or from a key file named by
``LKPERSIST_ENCRYPTION_KEY_FILE`` (one key per line, ``#`` comments and blank lines allowed), never both;
the first key encrypts, every key decrypts, so a rotation is "put the new key first, rotate, drop the old
key". A key's id (:func:`key_id`) is the first 8 hex digits of an HMAC-SHA256 keyed with it: stable,
recorded in every value it encrypts, and of no use for recovering the key. Messages name a key's
position or id, never the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from lkpersist.crypto import ENV_KEY_FILE, ENV_KEYS, ENV_STRICT
from lkpersist.exceptions import InvalidInputError

_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}=")
_KID_LABEL: Final = b"lkpersist key id v1"
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})


def generate_key() -> str:
    """Return a new random Fernet key (url-safe base64 text), as ``lkpersist encrypt keygen`` prints."""
    from cryptography.fernet import Fernet

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
