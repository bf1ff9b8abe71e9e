"""Stored turns in bulk, shared by every backend's export and import: payloads straight to the dicts a
:class:`~lkpersist.model.transfer.SessionRecord` carries, and back, with no ``Turn`` built per turn.

A page of an export or a batch of an import moves hundreds of thousands of turns; building and
re-encoding an object per turn was most of its time. These helpers decide only whether the fast form
applies (every payload exactly as ``Turn.to_json`` writes it): where it does not, they return None and
the caller takes the backend's ordinary per-turn path, which reads (or names as corrupt) every turn as
it always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lkpersist.crypto.codec import PlainCodec, PlainGuardCodec, ValueCodec
from lkpersist.exceptions import DecryptionError
from lkpersist.model.jsonform import canonical_turns, parse_turn_objects, turn_texts

TurnDicts = list[dict[str, Any]]


def turn_dicts(payloads: Sequence[bytes], codec: ValueCodec) -> TurnDicts | None:
    """The turns of stored ``payloads`` (oldest first) as ``Turn.to_dict`` dicts, or None: not all plain
    canonical turns (then decode them one by one, which names a bad one).

    With a plaintext codec the payloads are parsed as they are, in one call: an encrypted value, which
    ``PlainGuardCodec`` would refuse, is not JSON, so it can only make this None."""
    if not payloads:
        return []
    try:
        if isinstance(codec, PlainCodec | PlainGuardCodec):
            items = parse_turn_objects(b"[" + b",".join(payloads) + b"]")
        else:
            items = parse_turn_objects("[" + ",".join(codec.decode(p.decode("utf-8")) for p in payloads) + "]")
    except (ValueError, TypeError, UnicodeDecodeError, DecryptionError):  # the per-turn path names what is wrong
        return None
    if type(items) is not list or len(items) != len(payloads):
        return None
    return canonical_turns(items)


def turn_payloads(dicts: TurnDicts, codec: ValueCodec) -> list[str]:
    """What a store keeps for each turn: ``codec.encode(Turn.to_json())`` of each dict."""
    texts = turn_texts(dicts)
    if isinstance(codec, PlainCodec | PlainGuardCodec):
        return texts
    return [codec.encode(text) for text in texts]


__all__ = ["TurnDicts", "turn_dicts", "turn_payloads"]
