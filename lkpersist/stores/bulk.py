"""Stored turns in bulk, shared by every backend's export and import: payloads straight to the dicts a
:class:`~lkpersist.model.transfer.SessionRecord` carries, and back, with no ``Turn`` built per turn; and
JSON values written by orjson where it writes what the standard library does (:func:`json_text`).

A page of an export or a batch of an import moves hundreds of thousands of turns; building and
re-encoding an object per turn was most of its time. These helpers decide only whether the fast form
applies (every payload exactly as ``Turn.to_json`` writes it): where it does not, they return None and
the caller takes the backend's ordinary per-turn path, which reads (or names as corrupt) every turn as
it always did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from lkpersist.crypto.codec import PlainCodec, PlainGuardCodec, ValueCodec
from lkpersist.exceptions import DecryptionError
from lkpersist.model.jsonform import canonical_turns, parse_turn_objects, spliceable_turns, turn_texts

try:
    import orjson

    _orjson: Any = orjson
except ImportError:  # the fast extra is optional
    _orjson = None

TurnDicts = list[dict[str, Any]]


def turn_dicts(payloads: Sequence[bytes], codec: ValueCodec) -> TurnDicts | None:
    """The turns of stored ``payloads`` (oldest first) as ``Turn.to_dict`` dicts, or None: not all plain
    canonical turns (then decode them one by one, which names a bad one).

    With a plaintext codec the payloads are parsed as they are, in one call: an encrypted value, which
    ``PlainGuardCodec`` would refuse, is not JSON, so it can only make this None."""
    try:
        items = _parsed(payloads, codec)
    except _UNREAD:  # the per-turn path names what is wrong
        return None
    return None if items is None else canonical_turns(items)


def spliced_turns(payloads: Sequence[bytes], codec: ValueCodec) -> TurnDicts | None:
    """:func:`turn_dicts` of a plaintext store's ``payloads`` when the payloads joined by commas in
    brackets read back as exactly those dicts, by orjson and by the standard library alike, so an export
    line can carry the payloads as they are instead of writing the dicts again; else None (an encrypting
    codec, no orjson, a turn that is not plain and canonical: see :func:`turn_dicts`; a line break between
    tokens, which JSON allows and a line of NDJSON does not)."""
    if _orjson is None or not isinstance(codec, PlainCodec | PlainGuardCodec):
        return None
    try:
        items = _spliceable(payloads)
    except ValueError:
        return None
    return None if items is None else _splice_checked(items)


def turn_dict_page(pages: Sequence[Sequence[bytes]], codec: ValueCodec) -> list[TurnDicts | None]:
    """:func:`turn_dicts` of each record's payloads in ``pages`` (a page of records), the turns' fields
    checked once over the whole page (see :func:`_by_page`)."""
    return _by_page(pages, lambda payloads: _parsed(payloads, codec), canonical_turns,
                    lambda payloads: turn_dicts(payloads, codec))


def spliced_page(pages: Sequence[Sequence[bytes]], codec: ValueCodec) -> list[TurnDicts | None]:
    """:func:`spliced_turns` of each record's payloads in ``pages`` (a page of records), the turns' fields
    checked once over the whole page (see :func:`_by_page`)."""
    if _orjson is None or not isinstance(codec, PlainCodec | PlainGuardCodec):
        return [None] * len(pages)
    return _by_page(pages, _spliceable, _splice_checked, lambda payloads: spliced_turns(payloads, codec))


def _by_page(
    pages: Sequence[Sequence[bytes]],
    parse: Callable[[Sequence[bytes]], TurnDicts | None],
    check: Callable[[TurnDicts], TurnDicts | None],
    alone: Callable[[Sequence[bytes]], TurnDicts | None],
) -> list[TurnDicts | None]:
    """``alone(payloads)`` for each record of a page, computed as ``parse`` of each record's payloads on
    their own (so a record's dicts come from its text alone) and one ``check`` over all their turns: the
    checks' setup per call cost a third of their time for records of ten turns. When the page does not
    pass whole, each record is decided by ``alone`` (which leaves out only the odd ones)."""
    found: list[TurnDicts] = []
    try:
        for payloads in pages:
            items = parse(payloads)
            if items is None:
                break
            found.append(items)
        else:
            if check(list(chain.from_iterable(found))) is not None:
                return [*found]
    except _UNREAD:
        pass
    return [alone(payloads) for payloads in pages]


_UNREAD = (ValueError, TypeError, UnicodeDecodeError, DecryptionError)
"""What parsing stored payloads may raise (the per-turn path then names what is wrong)."""


def _parsed(payloads: Sequence[bytes], codec: ValueCodec) -> TurnDicts | None:
    """The payloads parsed as one JSON array (one value each), not yet checked; None: not one value each."""
    if isinstance(codec, PlainCodec | PlainGuardCodec):
        items = parse_turn_objects(b"[" + b",".join(payloads) + b"]")
    else:
        items = parse_turn_objects("[" + ",".join(codec.decode(p.decode("utf-8")) for p in payloads) + "]")
    return items if type(items) is list and len(items) == len(payloads) else None


def _spliceable(payloads: Sequence[bytes]) -> TurnDicts | None:
    """The payloads as orjson reads them joined, not yet checked; None: not one value each, or a line break."""
    joined = b"[" + b",".join(payloads) + b"]"
    if b"\n" in joined or b"\r" in joined:
        return None
    items = _orjson.loads(joined)
    return items if type(items) is list and len(items) == len(payloads) else None


def _splice_checked(items: TurnDicts) -> TurnDicts | None:
    dicts = canonical_turns(items)
    return dicts if dicts is not None and spliceable_turns(dicts) else None


def turn_payloads(dicts: TurnDicts, codec: ValueCodec) -> list[str]:
    """What a store keeps for each turn: ``codec.encode(Turn.to_json())`` of each dict."""
    texts = turn_texts(dicts)
    if isinstance(codec, PlainCodec | PlainGuardCodec):
        return texts
    return [codec.encode(text) for text in texts]


def json_text(value: Any, ordinary: Callable[[Any], str]) -> str:
    """``ordinary(value)`` (a standard-library encoder), or the same values written by orjson, about ten
    times faster, when ``value`` holds only plain JSON values (dicts with text keys, lists, text, finite
    floats, integers, booleans, None; nothing orjson would write differently or where the stdlib refuses).
    orjson refuses what it cannot write exactly (an integer beyond 64 bits, a lone surrogate): those go
    to ``ordinary``, as does anything else (a tuple, a NaN, a date, a cycle), which it writes or refuses
    as it always did. A float may be spelled differently (``1e-7`` for ``1e-07``): the same value."""
    if _orjson is not None and plain_json_values(value):
        try:
            return str(_orjson.dumps(value), "utf-8")
        except TypeError:
            pass
    return ordinary(value)


_SCALARS = frozenset({str, int, bool, type(None)})
_TEXT = frozenset({str})
_MOST_ITEMS = 100_000
"""Items :func:`plain_json_values` looks at before leaving a value to the stdlib (which also finds a cycle)."""


def plain_json_values(value: Any) -> bool:
    """True when ``value`` holds only plain JSON values (see :func:`json_text`), at most ``_MOST_ITEMS``."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not _TEXT.issuperset(map(type, item)):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif kind not in _SCALARS:
            return False
        seen += 1
        if seen > _MOST_ITEMS:
            return False
    return True


__all__ = [
    "TurnDicts", "json_text", "plain_json_values", "spliced_page", "spliced_turns", "turn_dict_page", "turn_dicts",
    "turn_payloads",
]
