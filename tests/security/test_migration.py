"""``encrypt status / migrate / rotate`` against real SQLite files and the real Redis, through the CLI.

Sessions are written in plaintext first (as a store that ran before encryption was switched on), then
migrated; the raw store is read behind lkpersist's back to prove no personal plaintext is left.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lkpersist.crypto.codec import is_encrypted_form
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import key_id
from lkpersist.crypto.migrate import MIGRATION_LOCK, encryption_status, migrate
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from lkpersist.stores.raw import Rewrite
from tests.security._raw import raw_values
from tests.security._sessions import KEY, NEW_KEY, SESSIONS, TURNS, cli, person, plaintexts


def leaks(url: str) -> list[str]:
    blob = b"\n".join(raw_values(url, with_files=True))  # SQLite: the file and WAL bytes too
    return [text for text in plaintexts() if text.encode() in blob]


def assert_reads_everything(url: str, keys: list[str]) -> None:
    for n in range(SESSIONS):
        data = person(n)
        shown = cli(url, "sessions", "show", data["identity"], "--turns", "100", "-o", "json", keys=keys)
        assert shown.exit_code == 0, shown.output
        document = json.loads(shown.stdout)
        assert document["language"] == data["language"]
        assert (document["metadata"], document["context"]) == (data["metadata"], data["context"])
        assert [turn["text"] for turn in document["turns"]] == data["turns"]


def status_of(url: str, keys: list[str]) -> dict[str, Any]:
    shown = cli(url, "encrypt", "status", "-o", "json", keys=keys)
    assert shown.exit_code == 0, shown.output
    return dict(json.loads(shown.stdout))


VALUES = SESSIONS * (1 + 2 + 1 + TURNS)  # language, 2 metadata (Redis: one value per key), context, turns


def test_migrate_leaves_no_plaintext_and_show_reads_everything(plain_store: str) -> None:
    assert set(leaks(plain_store)) == set(plaintexts())  # the raw reader sees plaintext when there is some
    dry = cli(plain_store, "encrypt", "migrate", "--dry-run", keys=[KEY])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("would encrypt") and set(leaks(plain_store)) == set(plaintexts())

    done = cli(plain_store, "encrypt", "migrate", "--batch", "3", keys=[KEY])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("encrypted ") and f"in {SESSIONS} sessions" in done.stdout
    assert leaks(plain_store) == []
    assert_reads_everything(plain_store, [KEY])
    status = status_of(plain_store, [KEY])
    assert status["plaintext"] == 0 and status["undecryptable"] == 0 and list(status["encrypted"]) == [key_id(KEY)]

    again = cli(plain_store, "encrypt", "migrate", keys=[KEY])
    assert again.exit_code == 0 and again.stdout.startswith("encrypted 0 of"), again.output


def test_rotate_then_drop_the_old_key(plain_store: str) -> None:
    assert cli(plain_store, "encrypt", "migrate", keys=[KEY]).exit_code == 0
    rotated = cli(plain_store, "encrypt", "rotate", keys=[NEW_KEY, KEY])
    assert rotated.exit_code == 0 and rotated.stdout.startswith("re-encrypted "), rotated.output
    assert status_of(plain_store, [NEW_KEY])["encrypted"] == {key_id(NEW_KEY): status_of(plain_store, [NEW_KEY])["values"]}
    assert_reads_everything(plain_store, [NEW_KEY])
    assert leaks(plain_store) == []


def test_status_counts_plaintext_and_key_ids(plain_store: str) -> None:
    status = status_of(plain_store, [KEY])
    assert status["sessions"] == SESSIONS and status["plaintext"] == status["values"] > 0
    text = cli(plain_store, "encrypt", "status", keys=[KEY])
    assert text.exit_code == 0 and f"plaintext      {status['values']}" in text.stdout


def test_migrate_needs_a_key(plain_store: str) -> None:
    refused = cli(plain_store, "encrypt", "migrate")
    assert refused.exit_code == 2 and "LKPERSIST_ENCRYPTION_KEYS" in refused.stderr


async def test_interrupted_migration_resumes_without_double_encryption(plain_store: str) -> None:
    """A run stopped after a few pages (the progress hook raises) and run again finishes the job, and
    every value decrypts exactly once to its original text."""

    class Stop(Exception):
        pass

    def stop_after_two_pages(done: int, seen: list[int] = []) -> None:  # noqa: B006 - a counter
        seen.append(done)
        if len(seen) == 2:
            raise Stop

    codec = FernetCodec([KEY])
    async with open_store(plain_store, codec=codec) as store:
        with pytest.raises(Stop):
            await migrate(store, page_size=2, progress=stop_after_two_pages)
        half = await encryption_status(store)
        assert 0 < half.plaintext < half.values
        result = await migrate(store, page_size=2)
        assert result.rewritten == half.plaintext
        async for page in store.stored_values().pages(100):
            for record in page:
                for value in record.values:
                    assert value.stored is not None and is_encrypted_form(value.stored)
                    assert not is_encrypted_form(codec.decode(value.stored))
    assert leaks(plain_store) == []
    await asyncio.to_thread(assert_reads_everything, plain_store, [KEY])  # the CLI runs its own event loop


async def test_status_and_migration_work_through_a_fallback_store(plain_store: str) -> None:
    """A FallbackStore's raw values are its primary's (before, a switch on the store's scheme found none)."""
    async with FallbackStore(open_store(plain_store, codec=FernetCodec([KEY]))) as store:
        before = await encryption_status(store)
        assert before.sessions == SESSIONS and before.plaintext == before.values > 0
        assert (await migrate(store)).rewritten == before.values
        assert (await encryption_status(store)).plaintext == 0
    assert leaks(plain_store) == []


async def test_memory_store_has_nothing_at_rest() -> None:
    async with open_store("memory://", codec=FernetCodec([KEY])) as store:
        await store.connect("someone")
        assert (await encryption_status(store)).values == 0
        assert (await migrate(store)).rewritten == 0


async def test_a_stale_rewrite_never_clobbers_what_an_agent_wrote(plain_store: str) -> None:
    """The compare-and-set itself: values read, then changed by an agent (new language and metadata, a
    turn appended that trims the oldest and shifts the list), are left as the agent wrote them."""
    codec = FernetCodec([KEY])
    identity, data = "caller-0", person(0)
    async with open_store(plain_store, codec=codec, max_turns=TURNS) as store:
        access = store.stored_values()
        (record,) = await access.reread([identity])
        await store.update(identity, language="changed", metadata={"plan": "changed"})
        await store.append_turn(identity, Turn("assistant", "appended", 9.0, item_id="new"))
        stale = [Rewrite(value.ref, value.stored, codec.encode(value.stored)) for value in record.values
                 if value.stored is not None]
        (applied,) = await access.rewrite([(identity, stale)])
        assert 0 < applied < len(stale) - 3
        session = await store.require(identity)
        assert session.language == "changed" and session.metadata == {**data["metadata"], "plan": "changed"}
        assert [turn.text for turn in await store.recent_turns(identity)] == [*data["turns"][1:], "appended"]
        await migrate(store)
        assert (await store.require(identity)).context == data["context"]
    assert leaks(plain_store) == []


async def test_one_migration_at_a_time(plain_store: str) -> None:
    other = open_store(plain_store, codec=FernetCodec([KEY]))
    async with other, other.lock(MIGRATION_LOCK, 30):
        refused = await asyncio.to_thread(cli, plain_store, "encrypt", "migrate", keys=[KEY])
        assert refused.exit_code == 1 and "lock 'encrypt' is held" in refused.stderr, refused.output
        assert (await asyncio.to_thread(cli, plain_store, "encrypt", "migrate", "--dry-run", keys=[KEY])).exit_code == 0
    assert set(leaks(plain_store)) == set(plaintexts())
