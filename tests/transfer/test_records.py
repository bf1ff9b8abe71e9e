"""SessionRecord in its two forms (Turn objects, or turn dicts in bulk) and the export line both make."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord, prepared
from lkpersist.transfer.format import parse_record, record_line
from tests.conftest import T0

SESSION = Session(identity="ada", joined_at=T0 - 100.0004, last_seen=T0 - 10, metadata={"big": 2**70, "nan": 1.5},
                  expires_at=T0 + 590, ttl=600.0)
TURNS = (Turn("user", "hi", T0 - 9, "i1"), Turn("assistant", "hello", T0 - 8, None), Turn("user", "x", T0 - 7, "i3"))


def test_a_record_of_dicts_equals_the_record_of_their_turns() -> None:
    by_dicts = SessionRecord.of_turn_dicts(SESSION, [turn.to_dict() for turn in TURNS])
    by_turns = SessionRecord(SESSION, TURNS)
    assert by_dicts == by_turns and by_dicts.turns == TURNS and by_dicts.turn_total == 3
    assert by_turns.turn_dicts == [turn.to_dict() for turn in TURNS]
    assert record_line(by_dicts) == record_line(by_turns)
    assert by_dicts.newest(2) == SessionRecord(SESSION, TURNS[1:]) == by_turns.newest(2)
    assert by_dicts.newest(3) is by_dicts
    with pytest.raises(AttributeError):
        by_dicts.session = SESSION  # type: ignore[misc]
    assert copy.deepcopy(by_dicts) == by_turns == pickle.loads(pickle.dumps(by_dicts))


def test_prepared_keeps_whole_milliseconds_and_rounds_the_rest() -> None:
    record = prepared(SessionRecord(SESSION, TURNS), 2)
    assert record.session.joined_at == round((T0 - 100.0004) * 1000) / 1000
    assert record.turns == TURNS[1:]
    again = prepared(record, 2)
    assert again == record and again.session is record.session  # nothing left to round: no copy


@pytest.mark.parametrize("turns_json", [
    '[{"role":"user","text":"a","timestamp":1800000000,"item_id":null}]',
    '[{"text":"a","role":"user","timestamp":1800000000.5}]',
    '[{"role":"user","text":"a","timestamp":1800000000.5,"item_id":12345678901234567890123}]',
], ids=["integer time", "key order", "big integer id"])
def test_a_line_not_as_written_here_reads_as_turn_from_dict_reads_it(turns_json: str) -> None:
    session = json.dumps(SESSION.to_dict())
    record = parse_record(f'{{"session":{session},"turns":{turns_json}}}', 2)
    assert record.turns == tuple(Turn.from_dict(turn) for turn in json.loads(turns_json))
    assert record.turns[0].item_id in (None, "12345678901234567890123")


def test_a_line_round_trips_exactly_with_big_integers_in_metadata() -> None:
    line = record_line(SessionRecord(SESSION, TURNS))
    record = parse_record(line, 2)
    assert record.session.metadata == {"big": 2**70, "nan": 1.5} and record.turns == TURNS
    assert record_line(record) == line
