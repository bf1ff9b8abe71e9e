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
  else (a non-finite timestamp, a lone surrogate) takes the stdlib path. Metadata and context never go
  through orjson: it turns integers beyond 64 bits into floats and NaN into null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
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
    items = [turns] if isinstance(turns, dict) else turns
    if _orjson is not None and all(math.isfinite(item["timestamp"]) for item in items):
        try:
            return str(_orjson.dumps(turns), "utf-8")
        except TypeError:  # not something orjson writes (a lone surrogate): the stdlib says what it is
            pass
    return acyclic_json(turns)


def parse_turn_objects(text: str) -> Any:
    """A JSON array of turn objects (orjson when installed; anything it refuses is parsed by the stdlib)."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except ValueError:
            pass
    return json.loads(text)


__all__ = ["acyclic_json", "compact_json", "parse_turn_objects", "turn_objects_json"]
