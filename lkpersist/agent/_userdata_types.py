"""The types userdata may be made of, and its JSON form: declared once, checked, then kept strictly.

A dataclass may hold ``str``, ``int``, ``float``, ``bool``, ``None``, ``list[T]``, ``tuple[T, ...]`` (or a
fixed ``tuple[A, B]``), ``set[T]`` / ``frozenset[T]`` of scalars, ``dict[str, T]``, ``Literal[...]`` of
scalars, an ``Enum`` with str or int values, unions whose members have different JSON forms (``int |
None``, ``str | list[str]``; ``int | float`` too), nested dataclasses and pydantic models. Anything else
(``Any``, a bare ``list``, ``datetime``, ``bytes``, a class of your own) cannot be rebuilt exactly, so
:func:`check_declared` refuses it, naming the field. A pydantic model is checked and converted by
pydantic itself (``model_dump(mode="json")``, ``model_validate``): each field must have a JSON schema.

Encoding checks each value against its declared type (a str in an ``int`` field is an error naming the
field, not a silent change); decoding is as strict and refuses stored fields the class no longer has,
so a renamed field is noticed instead of quietly dropped. Messages name fields, never values.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, TypeAdapter

from lkpersist.exceptions import InvalidInputError

_SCALARS = (str, int, float, bool, type(None))
SUPPORTED = (
    "str, int, float, bool, None, list[T], tuple[T, ...], set[T], dict[str, T], Literal, Enum, unions such "
    "as X | None, nested dataclasses or pydantic models"
)


class _Mismatch(InvalidInputError):
    """A value that does not fit its declared type (a union then tries its next member)."""


def check_declared(declared: type[Any]) -> None:
    """Refuse a userdata class that cannot be stored and rebuilt exactly, naming the field at fault."""
    if not (dataclasses.is_dataclass(declared) or issubclass(declared, BaseModel)):
        raise InvalidInputError(f"userdata must be a dataclass or a pydantic model, not {declared.__name__}")
    _check(declared, declared.__name__, frozenset())


def _check(tp: Any, where: str, seen: frozenset[type[Any]]) -> None:
    origin, args = get_origin(tp), get_args(tp)
    if tp in _SCALARS or tp in seen:
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if len({type(member.value) for member in tp} - {str, int}) or len({type(m.value) for m in tp}) > 1:
            raise _unsupported(where, tp, "its values must be all str or all int")
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _check_dataclass(tp, where, seen | {tp})
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        _check_model(tp, where)
    elif origin is Literal:
        if not all(type(arg) in _SCALARS for arg in args):
            raise _unsupported(where, tp, "Literal values must be str, int, float, bool or None")
    elif origin in (Union, types.UnionType):
        _check_union(args, where)
        for arg in args:
            _check(arg, where, seen)
    elif origin in (set, frozenset) and len(args) == 1:
        if _kind(args[0]) in ("array", "object"):
            raise _unsupported(where, tp, "a set can hold scalars only")
        _check(args[0], f"{where}[]", seen)
    elif origin is list and len(args) == 1:
        _check(args[0], f"{where}[]", seen)
    elif (
        origin is tuple
        and args
        and Ellipsis not in args[:-1]
        and (args[-1] is not Ellipsis or len(args) == 2)
    ):
        for arg in args if args[-1] is not Ellipsis else args[:1]:
            _check(arg, f"{where}[]", seen)
    elif origin is dict and len(args) == 2:
        if args[0] is not str:
            raise _unsupported(where, tp, "dict keys must be str")
        _check(args[1], f"{where}[]", seen)
    else:
        raise _unsupported(where, tp)


def _check_dataclass(tp: type[Any], where: str, seen: frozenset[type[Any]]) -> None:
    hints = _hints(tp, where)
    for item in dataclasses.fields(tp):
        if not item.init:
            raise InvalidInputError(
                f"userdata field {where}.{item.name} has init=False: userdata is rebuilt through __init__, "
                "so it could not be restored"
            )
        _check(hints[item.name], f"{where}.{item.name}", seen)


def _check_model(tp: type[BaseModel], where: str) -> None:
    for name, info in tp.model_fields.items():
        try:
            TypeAdapter(Any if info.annotation is None else info.annotation).json_schema()
        except Exception as exc:  # noqa: BLE001 -- pydantic's errors for types without a JSON form vary
            raise _unsupported(f"{where}.{name}", info.annotation, type(exc).__name__) from None


def _check_union(args: tuple[Any, ...], where: str) -> None:
    kinds = [_kind(arg) for arg in args if arg is not type(None)]
    if len(kinds) != len(set(kinds)):
        raise InvalidInputError(
            f"userdata field {where} is a union of types with the same JSON form "
            f"({', '.join(map(_name, args))}): "
            "it could not be told apart when restored"
        )


def _kind(tp: Any) -> str:
    """The JSON form a type is stored as; union members must differ in it."""
    origin = get_origin(tp)
    if tp is bool:
        return "bool"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "integer" if all(type(member.value) is int for member in tp) else "string"
    if tp is int:
        return "integer"  # told apart from float: JSON 1 and 1.5 decode as int and float
    if tp is float:
        return "number"
    if tp is str:
        return "string"
    if origin is Literal:
        return f"literal{get_args(tp)!r}"
    if origin in (list, tuple, set, frozenset):
        return "array"
    return "object"


def _hints(tp: type[Any], where: str) -> dict[str, Any]:
    try:
        return get_type_hints(tp)
    except Exception as exc:  # noqa: BLE001 -- a forward reference that does not resolve
        raise InvalidInputError(f"userdata {where}: its annotations do not resolve ({exc})") from None


def _unsupported(where: str, tp: Any, why: str = "") -> InvalidInputError:
    because = f" ({why})" if why else ""
    return InvalidInputError(
        f"userdata field {where} has type {_name(tp)}{because}, which cannot be stored and restored exactly; "
        f"use {SUPPORTED}"
    )


def _name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


# --- values ---------------------------------------------------------------------------------------


def encode_value(value: Any, tp: Any, where: str) -> Any:
    """``value`` as JSON, checked against ``tp``; _Mismatch (an InvalidInputError) naming the field."""
    origin, args = get_origin(tp), get_args(tp)
    if tp in _SCALARS:
        return _scalar(value, tp, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _instance(value, tp, where).value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        item = _instance(value, tp, where)
        return {
            f.name: encode_value(getattr(item, f.name), hints[f.name], f"{where}.{f.name}")
            for f in dataclasses.fields(tp)
        }
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _instance(value, tp, where).model_dump(mode="json", by_alias=True)
    if origin is Literal:
        if not _in_literal(value, args):
            raise _Mismatch(f"userdata field {where}: not one of {_name(tp)}")
        return value
    if origin in (Union, types.UnionType):
        for arg in args:
            try:
                return encode_value(value, arg, where)
            except _Mismatch:
                continue
        raise _Mismatch(f"userdata field {where}: a {type(value).__name__} is none of {_name(tp)}")
    if origin is dict:
        mapping = _instance(value, dict, where)
        if not all(isinstance(key, str) for key in mapping):
            raise _Mismatch(f"userdata field {where}: dict keys must be str")
        return {key: encode_value(item, args[1], f"{where}[]") for key, item in mapping.items()}
    items = list(_instance(value, origin, where))
    if origin is tuple and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise _Mismatch(f"userdata field {where}: expected {len(args)} items, got {len(items)}")
        return [encode_value(item, arg, f"{where}[]") for item, arg in zip(items, args, strict=True)]
    encoded = [encode_value(item, args[0], f"{where}[]") for item in items]
    return sorted(encoded, key=json.dumps) if origin in (set, frozenset) else encoded


def _in_literal(value: Any, choices: tuple[Any, ...]) -> bool:
    """``value`` is one of the choices, of the same type too (``True`` is not ``Literal[1]``)."""
    return any(type(value) is type(choice) and value == choice for choice in choices)


def _scalar(value: Any, tp: type[Any], where: str) -> Any:
    fits = type(value) is tp or (tp is float and type(value) is int)
    if not fits or (tp is float and not math.isfinite(value)):
        raise _Mismatch(f"userdata field {where}: expected {tp.__name__}, got {type(value).__name__}")
    return float(value) if tp is float else value


def _instance(value: Any, tp: Any, where: str) -> Any:
    if not isinstance(value, tp):
        raise _Mismatch(f"userdata field {where}: expected {_name(tp)}, got {type(value).__name__}")
    return value


def decode_value(data: Any, tp: Any, where: str) -> Any:
    """The value back from its JSON form; ValueError naming the field when the form does not fit ``tp``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp in _SCALARS:
        return _scalar_back(data, tp, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if not any(type(data) is type(member.value) and data == member.value for member in tp):
            raise ValueError(f"field {where}: the stored value is not one of {tp.__name__}")
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_back(data, tp, where)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        known = {info.alias or name for name, info in tp.model_fields.items()} | set(tp.model_fields)
        _no_unknown(_of(data, dict, where), known, where)
        return tp.model_validate(data)
    if origin is Literal:
        if not _in_literal(data, args):
            raise ValueError(f"field {where}: the stored value is not one of {_name(tp)}")
        return data
    if origin in (Union, types.UnionType):
        for arg in args:
            try:
                return decode_value(data, arg, where)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"field {where}: the stored value is none of {_name(tp)}")
    if origin is dict:
        return {
            key: decode_value(item, args[1], f"{where}[]") for key, item in _of(data, dict, where).items()
        }
    items = _of(data, list, where)
    if origin is tuple and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise ValueError(f"field {where}: {len(items)} items stored, {len(args)} declared")
        return tuple(decode_value(item, arg, f"{where}[]") for item, arg in zip(items, args, strict=True))
    return origin(decode_value(item, args[0], f"{where}[]") for item in items)


def _dataclass_back(data: Any, tp: type[Any], where: str) -> Any:
    stored = _of(data, dict, where)
    hints = get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    _no_unknown(stored, set(fields), where)
    missing = [name for name, f in fields.items() if name not in stored and _required(f)]
    if missing:
        raise ValueError(f"{where}: no stored value for {', '.join(missing)}")
    return tp(**{name: decode_value(value, hints[name], f"{where}.{name}") for name, value in stored.items()})


def _required(item: dataclasses.Field[Any]) -> bool:
    return item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING


def _no_unknown(stored: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"{where}: stored fields {', '.join(unknown)} are not in the class any more")


def _scalar_back(data: Any, tp: type[Any], where: str) -> Any:
    fits = type(data) is tp or (tp is float and type(data) is int)
    if not fits:
        raise ValueError(f"field {where}: expected {tp.__name__}, stored {type(data).__name__}")
    return float(data) if tp is float else data


def _of(data: Any, kind: type[Any], where: str) -> Any:
    if not isinstance(data, kind):
        raise TypeError(
            f"field {where}: expected {'an object' if kind is dict else 'a list'}, "
            f"stored {type(data).__name__}"
        )
    return data


__all__ = ["SUPPORTED", "check_declared", "decode_value", "encode_value"]
