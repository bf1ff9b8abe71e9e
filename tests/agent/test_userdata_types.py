"""The userdata codec alone: what round-trips exactly, and what a stored form that no longer fits gives."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

import pytest

from lkpersist.agent.userdata import UserdataCodec
from lkpersist.exceptions import InvalidInputError


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Node:
    name: str
    children: list[Node] = field(default_factory=list)


@dataclass
class Everything:
    mode: Literal["voice", "text"] = "voice"
    level: Level = Level.LOW
    ratio: int | float = 1
    words: tuple[str, ...] = ()
    pair: tuple[int, str] = (0, "")
    frozen: frozenset[int] = frozenset()
    maybe: list[str] | None = None
    either: int | str = 0
    tree: Node = field(default_factory=lambda: Node("root"))
    flag: bool = False


@pytest.mark.parametrize(
    "value",
    [
        Everything(),
        Everything(
            "text",
            Level.HIGH,
            2.5,
            ("a", "b"),
            (3, "x"),
            frozenset({3, 1, 2}),
            ["z"],
            "s",
            Node("a", [Node("b", [Node("c")])]),
            True,
        ),
        Everything(ratio=7, either=7, maybe=[]),
    ],
)
def test_values_round_trip_exactly(value: Everything) -> None:
    codec = UserdataCodec(Everything)
    codec.check_round_trip(value)
    assert codec.decode(codec.encode(value)) == value


def test_encoding_is_strict_about_declared_types() -> None:
    codec = UserdataCodec(Everything)
    with pytest.raises(InvalidInputError, match="Everything.flag: expected bool, got int"):
        codec.encode(Everything(flag=1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Everything.ratio: a float is none of"):
        codec.encode(Everything(ratio=float("nan")))
    with pytest.raises(InvalidInputError, match="not one of"):
        codec.encode(Everything(mode="video"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="expected 2 items"):
        codec.encode(Everything(pair=(1, "a", "b")))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not the declared"):
        codec.encode(Node("x"))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"mode": "video"}, "not one of"),
        ({"level": 9}, "not one of Level"),
        ({"words": "abc"}, "expected a list"),
        ({"tree": {"name": "x", "colour": "red"}}, "colour are not in the class"),
        ({"tree": {}}, "no stored value for name"),
        ({"flag": 1}, "expected bool"),
    ],
)
def test_a_stored_form_that_does_not_fit_raises(data: dict[str, object], why: str) -> None:
    codec = UserdataCodec(Everything)
    with pytest.raises((TypeError, ValueError), match=why):
        codec.decode({"type": codec.name, "data": data})
