"""Turn JSON with and without orjson: the same values either way, and the stdlib wherever orjson differs."""

from __future__ import annotations

import json
import math

import pytest

from lkpersist.model import jsonform
from lkpersist.model.session import Turn, turns_from_json

TURNS = [
    Turn("user", "héllo 👋 \"quoted\" \\ back\nslash", 1800000000.125, "item_1"),
    Turn("assistant", "", 1e-7, None),
    Turn("user", "x" * 10_000, 1800000000.0, "item_2"),
]


def test_orjson_is_installed_for_the_test_run() -> None:
    assert jsonform._orjson is not None  # the test extra installs the fast extra: its path is what is tested


@pytest.mark.parametrize("turn", TURNS, ids=range(len(TURNS)))
def test_a_turn_reads_back_the_same_through_either_parser(turn: Turn) -> None:
    text = turn.to_json()
    assert json.loads(text) == turn.to_dict() == jsonform.parse_turn_objects(text)
    assert turns_from_json([text, text]) == [turn, turn]


def test_what_orjson_would_change_goes_through_the_standard_library() -> None:
    odd = Turn("user", "lone \ud800 surrogate", math.inf, None)
    text = odd.to_json()  # neither a lone surrogate nor Infinity is something orjson writes
    assert text == jsonform.acyclic_json(odd.to_dict())
    assert jsonform.parse_turn_objects("[" + text + "]") == [json.loads(text)]


def test_without_orjson_the_standard_library_does_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    with_orjson = [turn.to_json() for turn in TURNS]
    monkeypatch.setattr(jsonform, "_orjson", None)
    without = [turn.to_json() for turn in TURNS]
    assert [json.loads(a) for a in with_orjson] == [json.loads(b) for b in without]
    assert turns_from_json(without) == TURNS
