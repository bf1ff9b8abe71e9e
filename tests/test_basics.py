"""Durations, the TTL policy, clocks and the model's JSON form."""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock, from_ms, to_ms
from lkpersist.durations import format_duration, parse_duration
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import Connection, Device, Session, Turn
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1.5m", 90), (" 10S ", 10)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-5m", "5 minutes", "5mm", "m", "1e3", "5m3s"])
def test_bad_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42, "42s"), (300, "5m"), (5400, "1h30m"), (90061, "1d1h1m1s")])
def test_durations_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_default_ttl_policy_follows_the_seed() -> None:
    assert [DEFAULT_TTL_POLICY.ttl_for(n) for n in range(5)] == [300, 600, 600, 1800, 1800]


def test_ttl_policy_rejects_nonsense() -> None:
    with pytest.raises(InvalidInputError):
        TTLPolicy(first=0)
    with pytest.raises(InvalidInputError):
        TTLPolicy(frequent_after=0)


def test_virtual_clock_moves_only_forward() -> None:
    clock = VirtualClock(100.0)
    clock.advance(360)
    assert clock.now() == 460.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_milliseconds_round_trip() -> None:
    assert from_ms(to_ms(1_800_000_000.123)) == 1_800_000_000.123


def test_session_and_turn_json_round_trip() -> None:
    session = Session("a", 1.0, 2.5, 3, "fr", {"k": [1]}, {"summary": "s"}, True, None, 600.0, greeted_visit=4,
                      connections=(Connection("agent:job:1", 1.0, 2.5),), devices=(Device("phone", "iOS", 1.0, 2.0),),
                      switch_until=7.5)
    assert Session.from_dict(session.to_dict()) == session
    turn = Turn("user", "hi", 3.25, "item")
    assert Turn.from_dict(turn.to_dict()) == turn


def test_session_from_bad_dict_raises() -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        Session.from_dict({"identity": "a", "joined_at": "x", "last_seen": 1})
    with pytest.raises(TypeError):
        Session.from_dict({"identity": "a", "joined_at": 1, "last_seen": 1, "metadata": [1]})


def test_default_store_is_a_sqlite_file_in_the_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from lkpersist.stores import default_store_url, open_store, resolve_store_url

    odd = tmp_path / "we%ird?dir#x"
    monkeypatch.setenv("XDG_STATE_HOME", str(odd))
    monkeypatch.delenv("LKPERSIST_STORE", raising=False)
    url = default_store_url()
    assert url.startswith("sqlite:///") and resolve_store_url(None) == url
    store = open_store(url)
    assert str(store.path).startswith(str(odd))  # type: ignore[attr-defined]
    monkeypatch.setenv("LKPERSIST_STORE", "memory://")
    assert resolve_store_url(None) == "memory://"
    assert resolve_store_url("sqlite:///x.db") == "sqlite:///x.db"
