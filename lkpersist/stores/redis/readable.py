"""Encryption at rest, Redis side: what the scripts check before writing, and the migration hooks.

The lifecycle scripts never decrypt; they compare the ``enc:v1:<kid>:`` header of each stored personal
value with the key ids the client holds (``check_readable`` in ``_redis_lua``), so a client with a wrong
or missing key is refused before connect, disconnect or update change anything, in the same round trip.
The migration hooks that read and rewrite those values raw are in :mod:`~lkpersist.stores.redis.raw`.
"""

from __future__ import annotations

from lkpersist.crypto.codec import ValueCodec, unreadable_reason
from lkpersist.crypto.fernet import readable_forms
from lkpersist.exceptions import DecryptionError

ANY_FORM = (b"*", b"")


def readable_args(codec: ValueCodec) -> tuple[bytes, bytes]:
    """``check_readable``'s two script arguments for ``codec``: plaintext allowed, known key ids."""
    forms = readable_forms(codec)
    if forms is None:
        return ANY_FORM
    return (b"1" if forms.plaintext else b"0", ",".join(forms.key_ids).encode("ascii"))


def unreadable_error(reply_text: str, identity: str | None) -> DecryptionError:
    """The DecryptionError for a script's ``LKPUNREADABLE <what>`` refusal."""
    what = reply_text.split("LKPUNREADABLE", 1)[1].split()[:1]
    word = what[0] if what else "damaged"
    if word == "plaintext":
        reason = unreadable_reason(None)
    elif word == "nokey":
        reason = unreadable_reason("", keys_configured=False)
    elif word == "damaged":
        reason = "encrypted value has an unsupported or damaged header"
    else:
        reason = unreadable_reason(word)
    return DecryptionError(reason, identity)

