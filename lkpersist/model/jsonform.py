"""JSON text as lkpersist writes and reads it: compact, non-ASCII kept, and fast where volume is.

Stores keep each turn as its own JSON object, and an export line holds a session's turns, so a page of a
listing, an export or an import encodes or parses thousands of small objects; the standard library's
per-call setup shows there. So:

- :data:`compact_json`: the stdlib encoder, built once (``json.dumps`` with options builds one per call).
- :data:`acyclic_json`: the stdlib's C encoder without that setup and without the circular-reference
  check, for values that came out of JSON or out of a Turn, which cannot hold a cycle.
- :func:`turn_objects_json` and :func:`parse_turn_objects`: turn dicts (role, text, timestamp, item_id)
  with ``orjson`` when it is installed (the ``fast`` extra; several times faster), else the above. Only
  for turns: their values are strings, a number and null, for which orjson writes and reads exactly
  what the stdlib does (same values; a float may be spelled ``1e-7`` instead of ``1e-07``). Anything
  else (a non-finite timestamp, a lone surrogate) takes the stdlib path. Metadata and context are never
  *written* by orjson: it refuses integers beyond 64 bits and writes NaN as null.
- :func:`parse_json`: any JSON text (an export line), read by orjson only where it provably reads what
  the stdlib reads: orjson refuses NaN, Infinity, an overflowing float and a lone surrogate (the stdlib
  then reads them), and the one thing it reads differently, an integer beyond 64 bits (it gives a
  float), needs a run of at least 19 digits in the text and leaves a whole float of at least 2**63
  behind: both together send the text to the stdlib.
- :func:`canonical_turns`: parsed turn objects checked to be exactly what ``Turn.to_dict`` gives, so a
  page of stored turns can travel as dicts (export, import) without building a ``Turn`` per turn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

compact_json: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _acyclic_encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return compact_json

    def refuse(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    encode = make(None, refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


acyclic_json = _acyclic_encoder()

try:
    import orjson

    _orjson: Any = orjson
except ImportError:  # the fast extra is optional
    _orjson = None


def turn_objects_json(turns: Sequence[dict[str, Any]] | dict[str, Any]) -> str:
    """One turn dict, or a list of them, as compact JSON (orjson when installed and the timestamps are finite)."""
    finite = math.isfinite(turns["timestamp"]) if isinstance(turns, dict) else finite_times(turns)
    if _orjson is not None and finite:
        try:
            return str(_orjson.dumps(turns), "utf-8")
        except TypeError:  # not something orjson writes (a lone surrogate): the stdlib says what it is
            pass
    return acyclic_json(turns)


def finite_times(turns: Sequence[dict[str, Any]]) -> bool:
    """Every timestamp of turn dicts ``turns`` finite (a sum overflowing to infinity only sends finite ones the stdlib's way)."""
    try:
        return math.isfinite(sum(map(_timestamp, turns)))
    except TypeError:
        return False


def turn_texts(turns: Sequence[dict[str, Any]]) -> list[str]:
    """``turn_objects_json`` of each turn dict: what ``Turn.to_json`` gives for each, in one pass."""
    if _orjson is not None and finite_times(turns):
        dumps = _orjson.dumps
        try:
            return [str(dumps(item), "utf-8") for item in turns]
        except TypeError:
            pass
    return [turn_objects_json(item) for item in turns]


def parse_turn_objects(text: str | bytes) -> Any:
    """A JSON array of turn objects (orjson when installed; anything it refuses is parsed by the stdlib)."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except ValueError:
            pass
    return json.loads(text)


_INT64 = float(2**63)
_timestamp = itemgetter("timestamp")
_TURN_KEYS = ("role", "text", "timestamp", "item_id")


def parse_json(text: str | bytes, unchecked: str | None = None) -> Any:
    """``json.loads(text)``, by orjson wherever that gives the same value (see the module docstring).

    The value under the top-level key ``unchecked`` is not searched for big integers: the caller checks
    it exactly itself (:func:`canonical_turns`) and, when that fails, reads the text with ``json.loads``."""
    if _orjson is not None:
        try:
            value = _orjson.loads(text)
        except ValueError:  # NaN, Infinity, a lone surrogate, or not JSON at all: the stdlib reads it or says why
            return json.loads(text)
        if not _spells_long_integer(text):
            return value
        checked = [v for k, v in value.items() if k != unchecked] if type(value) is dict else value
        if not _may_be_big_integer(checked):
            return value
    return json.loads(text)


def parse_json_texts(texts: Sequence[bytes]) -> list[Any] | None:
    """``[json.loads(text) for text in texts]`` when orjson reads each text as exactly that (see
    :func:`parse_json`), in one C pass over them; None when it may not (no orjson installed, a text it
    refuses or may read differently: the caller reads them the ordinary way, which also names a bad one)."""
    if _orjson is None:
        return None
    try:
        values = list(map(_orjson.loads, texts))
    except ValueError:
        return None
    return None if _spells_long_integer(b" ".join(texts)) and _may_be_big_integer(values) else values


_DIGIT_MARKS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""A ``bytes.translate`` table: every ASCII digit to ``0``, every other byte to a space."""
_LONG_RUN = b"0" * 19


def _spells_long_integer(text: str | bytes) -> bool:
    """True when ``text`` holds a run of 19 or more ASCII digits anywhere (in a string too).

    Every integer literal orjson reads differently from the stdlib (beyond 64 bits: below -2**63 or
    above 2**64 - 1) is such a run, so without one the value orjson read is the stdlib's, and the walk
    of :func:`_may_be_big_integer` (several times slower, for an export line) is not needed. UTF-8 never
    puts an ASCII byte inside another character, so the bytes tell. One C pass (translate, then a search)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return _LONG_RUN in raw.translate(_DIGIT_MARKS)


def _may_be_big_integer(value: Any) -> bool:
    """True when ``value`` holds a float orjson may have read from an integer literal beyond 64 bits
    (a whole float of magnitude 2**63 or more; the literal ``1e19`` is one too, and costs a slower parse)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and abs(item) >= _INT64 and item.is_integer():
            return True
    return False


def canonical_turns(items: Any) -> list[dict[str, Any]] | None:
    """``items`` when it is a list of dicts each exactly as ``Turn.to_dict`` writes them (these keys in
    this order, str role and text, float timestamp, str or null item id), else None (build ``Turn``s).

    Checked with C-level iteration (``map``), one field of every turn at a time: a page holds thousands."""
    if type(items) is not list:
        return None
    try:
        if not all(map(_TURN_KEYS.__eq__, map(tuple, items))):
            return None
        kinds = (_STR.issuperset(map(type, map(_role, items))) and _STR.issuperset(map(type, map(_text, items)))
                 and _FLOAT.issuperset(map(type, map(_timestamp, items)))
                 and _ITEM_ID.issuperset(map(type, map(_item_id, items))))
    except TypeError:  # an item that is not a dict (a list of the four key names passes the first test)
        return None
    return items if kinds else None


_role, _text, _item_id = itemgetter("role"), itemgetter("text"), itemgetter("item_id")
_STR, _FLOAT, _ITEM_ID = frozenset({str}), frozenset({float}), frozenset({str, type(None)})


def spliceable_turns(items: list[dict[str, Any]]) -> bool:
    """True when canonical turn dicts ``items``, parsed by orjson from some text, are what the standard
    library reads from that text too, so the text itself can stand for them in a line: every timestamp
    below 2**63 (orjson reads an integer literal beyond 64 bits as a float; the stdlib as an int)."""
    return not items or max(map(abs, map(_timestamp, items))) < _INT64


def plain_object(text: bytes) -> dict[str, Any] | None:
    """The JSON object ``text`` as orjson reads it, when that is exactly what ``json.loads`` reads (so
    orjson writes it back as the same values); None for anything else (not JSON, not an object, NaN or
    Infinity, a lone surrogate, an integer that may lie beyond 64 bits, or no orjson installed)."""
    if _orjson is None:
        return None
    try:
        value = _orjson.loads(text)
    except ValueError:
        return None
    return value if type(value) is dict and not _may_be_big_integer(value) else None


__all__ = [
    "acyclic_json", "canonical_turns", "compact_json", "finite_times", "parse_json", "parse_json_texts", "parse_turn_objects",
    "plain_object",
    "spliceable_turns", "turn_objects_json", "turn_texts",
]
