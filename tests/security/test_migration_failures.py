"""A wrong or missing key, and tampered ciphertext: exit 3, one line naming the session, store unchanged.

Every case takes a raw dump of the store (behind lkpersist's back) before and after the failing
command and requires them to be identical.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from typer.testing import Result

from lkpersist.stores.redis.keys import KeyLayout
from tests.security._raw import raw_dump, redis_client_and_prefix, sqlite_path
from tests.security._sessions import KEY, NEW_KEY, cli, person, write_plain

OTHER_KEY = NEW_KEY
VICTIM = person(3)["identity"]


@pytest.fixture
def encrypted_store(plain_store: str) -> str:
    done = cli(plain_store, "encrypt", "migrate", keys=[KEY])
    assert done.exit_code == 0, done.output
    return plain_store


def assert_one_line_naming(result: Result, identity: str | None = None) -> None:
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot decrypt session '" + (identity or ""))
    assert KEY not in result.stderr and OTHER_KEY not in result.stderr
    assert "secret" not in result.stderr and "card ends" not in result.stderr


def tamper(url: str, identity: str, field: str, change: str) -> None:
    """Damage one stored value of ``identity`` (its first turn, or its language) by ``change``."""
    if url.startswith("sqlite"):
        _tamper_sqlite(sqlite_path(url), identity, field, change)
    else:
        _tamper_redis(url, identity, field, change)


def _damaged(stored: str, change: str) -> str:
    if change == "truncated":
        return stored[:-12]
    middle = len(stored) - 40  # inside the Fernet token's ciphertext
    return stored[:middle] + ("B" if stored[middle] != "B" else "C") + stored[middle + 1:]


def _tamper_sqlite(path: Path, identity: str, field: str, change: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        (session_id,) = connection.execute("SELECT id FROM lkpersist_sessions WHERE identity = ?", (identity,)).fetchone()
        if field == "language":
            (stored,) = connection.execute("SELECT language FROM lkpersist_sessions WHERE id = ?", (session_id,)).fetchone()
            connection.execute("UPDATE lkpersist_sessions SET language = ? WHERE id = ?", (_damaged(stored, change), session_id))
        else:
            turn_id, stored = connection.execute(
                "SELECT id, payload FROM lkpersist_turns WHERE session_id = ? ORDER BY seq LIMIT 1", (session_id,)
            ).fetchone()
            connection.execute("UPDATE lkpersist_turns SET payload = ? WHERE id = ?", (_damaged(stored, change), turn_id))
    connection.close()


def _tamper_redis(url: str, identity: str, field: str, change: str) -> None:
    client, prefix = redis_client_and_prefix(url)
    keys = KeyLayout(prefix).keys_for(identity)[1]
    try:
        if field == "language":
            stored = client.hget(keys.session, "L").decode()
            client.hset(keys.session, "L", _damaged(stored, change))
        else:
            frame = client.lindex(keys.turns, 0).decode()
            client.lset(keys.turns, 0, _damaged(frame, change))
    finally:
        client.close()


@pytest.mark.parametrize("field", ["turn", "language"])
@pytest.mark.parametrize("change", ["truncated", "bit-flipped"])
def test_tampered_value_is_an_error_naming_the_session(encrypted_store: str, field: str, change: str) -> None:
    tamper(encrypted_store, VICTIM, field, change)
    before = raw_dump(encrypted_store)
    commands = [("sessions", "show", VICTIM, "--turns", "5"), ("encrypt", "migrate"), ("encrypt", "rotate")]
    if field == "language":
        commands.append(("sessions", "ls"))
    for command in commands:
        assert_one_line_naming(cli(encrypted_store, *command, keys=[KEY]), VICTIM)
        assert raw_dump(encrypted_store) == before, command
    status = cli(encrypted_store, "encrypt", "status", "-o", "json", keys=[KEY])
    assert status.exit_code == 3 and '"undecryptable": 1' in status.stdout and VICTIM in status.stderr


@pytest.mark.parametrize("keys", [[OTHER_KEY], []], ids=["wrong key", "no key"])
def test_wrong_or_missing_key_is_an_error_naming_the_session(encrypted_store: str, keys: list[str]) -> None:
    before = raw_dump(encrypted_store)
    for command in [("sessions", "show", VICTIM), ("sessions", "ls"), ("encrypt", "migrate"), ("encrypt", "rotate")]:
        result = cli(encrypted_store, *command, keys=keys)
        if not keys and command[0] == "encrypt":
            assert result.exit_code == 2 and "key" in result.stderr  # encrypting without any key: usage
        else:
            assert_one_line_naming(result, VICTIM if command[1] == "show" else None)
        assert raw_dump(encrypted_store) == before, command


def test_half_migrated_store_is_not_finished_with_a_wrong_key(encrypted_store: str) -> None:
    """Plaintext written after a migration is not encrypted under a wrong key: the run refuses first."""
    asyncio.run(write_plain(encrypted_store, range(10, 13)))
    before = raw_dump(encrypted_store)
    assert_one_line_naming(cli(encrypted_store, "encrypt", "migrate", keys=[OTHER_KEY]))
    assert raw_dump(encrypted_store) == before
    assert cli(encrypted_store, "encrypt", "migrate", keys=[KEY]).exit_code == 0
