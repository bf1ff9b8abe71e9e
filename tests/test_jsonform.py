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


EXACT_TEXTS = [
    '{"a":123456789012345678901234567890,"b":[-9223372036854775809,18446744073709551616]}',
    '{"a":NaN,"b":Infinity,"c":-Infinity}',
    '{"a":"lone \\ud800 surrogate"}',
    '{"a":1e400,"b":[{"c":1e19}]}',
    '{"a":9223372036854775807,"b":-9223372036854775808,"c":0.1,"d":-0.0,"e":5e-324,"f":"é\\u00e9"}',
    '{"a":1,"a":2}',
    '[1.7976931348623157e308, 1, true, null]',
    '{"a":"a run of digits in text 12345678901234567890123","b":-18446744073709551617}',
    '{"é":"ü👋","n":[{"m":99999999999999999999}]}',
    '{"a":"12345678901234567890123","b":1.5}',
    '{"a":-9223372036854775809}',
]


@pytest.mark.parametrize("text", EXACT_TEXTS, ids=range(len(EXACT_TEXTS)))
def test_parse_json_gives_exactly_what_the_standard_library_gives(text: str) -> None:
    expected = json.loads(text)
    for parsed in (jsonform.parse_json(text), jsonform.parse_json(text.encode("utf-8"))):
        assert repr(parsed) == repr(expected)  # repr: NaN is not equal to itself, and 1 == 1.0
        assert json.dumps(parsed) == json.dumps(expected)


def test_parse_json_leaves_the_unchecked_key_to_its_caller() -> None:
    text = '{"session":{"n":1},"turns":[{"t":123456789012345678901234567890}]}'
    unchecked = jsonform.parse_json(text, unchecked="turns")["turns"][0]["t"]
    assert isinstance(unchecked, float if jsonform._orjson is not None else int)  # orjson's reading, or the stdlib's
    assert jsonform.parse_json(text)["turns"][0]["t"] == 123456789012345678901234567890  # checked: exact
    text = '{"session":{"n":123456789012345678901234567890},"turns":[]}'
    assert jsonform.parse_json(text, unchecked="turns")["session"] == {"n": 123456789012345678901234567890}


@pytest.mark.parametrize(("text", "long"), [
    ("1234567890123456789", True), ("-1234567890123456789", True), ("123456789012345678", False),
    ('{"t":1800000000.123456789,"u":123456789.0123456789}', False), ('"é1234567890123456789é"', True),
    ('{"a":[1,2,3],"b":"x"}', False), ("", False),
])
def test_a_long_integer_is_spelled_by_a_run_of_19_digits(text: str, long: bool) -> None:
    assert jsonform._spells_long_integer(text) is long
    assert jsonform._spells_long_integer(text.encode("utf-8")) is long


def test_parse_json_reads_a_text_without_a_long_digit_run_by_orjson_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: object) -> bool:
        raise AssertionError("walked")

    monkeypatch.setattr(jsonform, "_may_be_big_integer", refuse)
    assert jsonform.parse_json('{"a":[1.5e300,{"b":123456789012345678}],"c":"d"}') == json.loads(
        '{"a":[1.5e300,{"b":123456789012345678}],"c":"d"}')
    with pytest.raises(AssertionError, match="walked"):
        jsonform.parse_json('{"a":1234567890123456789}')


def test_parse_json_refuses_what_the_standard_library_refuses() -> None:
    for text in ("{", '{"a":}', "[1,]", ""):
        with pytest.raises(json.JSONDecodeError):
            jsonform.parse_json(text)


@pytest.mark.parametrize("items", [
    [{"role": "user", "text": "t", "timestamp": 1, "item_id": None}],
    [{"text": "t", "role": "user", "timestamp": 1.0, "item_id": None}],
    [{"role": "user", "text": "t", "timestamp": 1.0}],
    [{"role": "user", "text": "t", "timestamp": 1.0, "item_id": None, "x": 1}],
    [{"role": 1, "text": "t", "timestamp": 1.0, "item_id": None}],
    [{"role": "user", "text": "t", "timestamp": 1.0, "item_id": 7}],
    ["not a dict"], [["role", "text", "timestamp", "item_id"]], {"role": "user"},
], ids=range(9))
def test_canonical_turns_refuses_anything_turn_from_dict_would_change(items: object) -> None:
    assert jsonform.canonical_turns(items) is None


def test_canonical_turns_takes_what_turn_to_dict_writes() -> None:
    dicts = [turn.to_dict() for turn in TURNS]
    assert jsonform.canonical_turns(dicts) is dicts and jsonform.canonical_turns([]) == []
    assert jsonform.turn_texts(dicts) == [turn.to_json() for turn in TURNS]
    odd = Turn("user", "lone \ud800", math.nan, None).to_dict()
    assert jsonform.turn_texts([odd, dicts[0]]) == [jsonform.turn_objects_json(odd), TURNS[0].to_json()]
