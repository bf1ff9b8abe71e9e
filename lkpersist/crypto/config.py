"""The codec a process's configuration asks for: keys from the environment or a key file, or none."""

from __future__ import annotations

import os
from collections.abc import Mapping

from lkpersist.crypto import ENV_KEYS, ENV_STRICT
from lkpersist.crypto.codec import PLAIN_GUARD, ValueCodec
from lkpersist.crypto.keys import keys_from_env, strict_from_env
from lkpersist.exceptions import InvalidInputError


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
    from lkpersist.crypto.fernet import FernetCodec  # cryptography is loaded only when keys are configured

    return FernetCodec(keys, strict=strict)
