"""The positional row values of SQLite's presence writes say what the named parameters say."""

from __future__ import annotations

import json

import pytest

from lkpersist.crypto.codec import PlainCodec
from lkpersist.model.session import Connection, Device, Session
from lkpersist.stores.sqlite.rows import (
    OPS_FIELDS,
    PERSONAL_FIELDS,
    ops_params,
    ops_values,
    personal_params,
    personal_values,
)

T = 1_800_000_000.123

SESSIONS = [
    Session("ann", T, T, connected=True, connections=(Connection("-", T, T),)),
    Session(
        "bo", T - 50.5, T, reconnect_count=3, connected=False, expires_at=T + 600.25, ttl=600.25, greeted_visit=4,
        connections=(), devices=(Device("web:Chrome", "Chrome \u00e9", T - 50, T),), switch_until=T + 5.0,
        language="fr", metadata={"a": [1, "\u2603"]}, context={"summary": "x\"y"},
    ),
    Session(
        "cy", T, T + 1, connected=True,
        connections=(Connection('a"b\\c', T, T + 1), Connection("\u00fcnicode \u2603", T - 1, T), Connection("-", T, T)),
    ),
]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.identity)
def test_ops_values_are_the_session_s_columns_in_column_order(session: Session) -> None:
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    expected = {
        "joined_at": _ms(session.joined_at), "last_seen": _ms(session.last_seen),
        "reconnect_count": session.reconnect_count, "connected": int(session.connected),
        "expires_at": _ms(session.expires_at), "ttl": _ms(session.ttl), "deadline": _ms(session.deadline),
        "greeted_visit": session.greeted_visit,
        "connections": json.dumps([[c.id, _ms(c.since), _ms(c.last_beat)] for c in session.connections], **compact),
        "devices": json.dumps([[d.device_id, d.label, _ms(d.first_seen), _ms(d.last_seen)] for d in session.devices],
                              **compact),
        "switch_until": _ms(session.switch_until), "schema_version": session.schema_version,
    }
    assert tuple(expected) == OPS_FIELDS
    assert ops_values(session) == tuple(expected.values())
    assert ops_params(session) == {"identity": session.identity, **expected}


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.identity)
def test_personal_values_are_the_session_s_columns_in_column_order(session: Session) -> None:
    expected = {
        "language": session.language,
        "metadata": json.dumps(session.metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        "context": json.dumps(session.context, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
    }
    assert tuple(expected) == PERSONAL_FIELDS
    assert personal_values(session, PlainCodec()) == tuple(expected.values())
    assert personal_params(session, PlainCodec()) == expected


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.identity)
def test_connections_are_compact_json_of_id_since_and_beat(session: Session) -> None:
    text = ops_params(session)["connections"]
    expected = [[c.id, round(c.since * 1000), round(c.last_beat * 1000)] for c in session.connections]
    assert json.loads(text) == expected
    assert text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
