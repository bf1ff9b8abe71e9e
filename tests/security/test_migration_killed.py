"""``encrypt migrate`` killed with SIGKILL half-way, then run again: finished, nothing lost or doubled.

Nothing runs on SIGKILL: no cleanup, no rollback from our side. What makes it safe is that every batch
is one transaction (SQLite) or one script per session (Redis), and that a re-run leaves encrypted
values alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time

from lkpersist.clock import VirtualClock
from lkpersist.crypto.codec import is_encrypted_form
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.migrate import MIGRATION_LOCK_TTL, migrate
from lkpersist.stores import open_store
from lkpersist.stores.redis.keys import KeyLayout
from tests.cli.test_processes import lkpersist_command
from tests.security._raw import raw_values, redis_client_and_prefix, sqlite_path
from tests.security._sessions import KEY, cli, person, write_plain

MANY = 600


def encrypted_and_plain(url: str) -> tuple[int, int]:
    """How many sessions' languages are encrypted and how many still plaintext (one cheap raw read)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(sqlite_path(url))
        try:
            languages = [row[0].encode() for row in connection.execute("SELECT language FROM lkpersist_sessions")]
        finally:
            connection.close()
    else:
        client, prefix = redis_client_and_prefix(url)
        layout = KeyLayout(prefix)
        try:
            pipe = client.pipeline(transaction=False)
            for n in range(MANY):
                pipe.hget(layout.keys_for(person(n)["identity"])[1].session, "L")
            languages = pipe.execute()
        finally:
            client.close()
    encrypted = sum(1 for language in languages if language.startswith(b"enc:v1:"))
    return encrypted, len(languages) - encrypted


def kill_half_way(url: str) -> None:
    env = {**os.environ, "LKPERSIST_ENCRYPTION_KEYS": KEY}
    proc = subprocess.Popen([*lkpersist_command(), "--store", url, "encrypt", "migrate", "--batch", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if encrypted_and_plain(url)[0] > 10:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


async def check_everything(url: str) -> None:
    codec = FernetCodec([KEY])
    async with open_store(url, codec=codec) as store:
        async for page in store.stored_values().pages(100):
            for record in page:
                for value in record.values:
                    assert value.stored is not None and is_encrypted_form(value.stored)
                    assert not is_encrypted_form(codec.decode(value.stored)), "encrypted twice"
        for n in range(MANY):
            data = person(n)
            session = await store.require(data["identity"])
            assert (session.language, session.metadata, session.context) == (
                data["language"], data["metadata"], data["context"])
            assert [turn.text for turn in await store.recent_turns(data["identity"])] == data["turns"]


def test_killed_migration_is_finished_by_running_it_again(url: str) -> None:
    asyncio.run(write_plain(url, range(MANY)))
    kill_half_way(url)
    encrypted, plain = encrypted_and_plain(url)
    assert encrypted > 0 and plain > 0, "the kill did not land half-way"
    refused = cli(url, "encrypt", "migrate", keys=[KEY])  # the dead run's lock has not expired yet
    assert refused.exit_code == 1 and "lock 'encrypt' is held" in refused.stderr, refused.output
    asyncio.run(finish_after_the_lock_expired(url))
    assert encrypted_and_plain(url)[1] == 0
    blob = b"\n".join(raw_values(url, with_files=True))
    assert b"lang-secret-" not in blob and b"my card ends" not in blob
    asyncio.run(check_everything(url))


async def finish_after_the_lock_expired(url: str) -> None:
    """Run again once the killed run's lock ttl is over (a clock that far ahead, rather than a wait)."""
    later = VirtualClock(time.time() + MIGRATION_LOCK_TTL + 1)
    async with open_store(url, codec=FernetCodec([KEY]), clock=later) as store:
        result = await migrate(store)
    assert 0 < result.rewritten < result.values and result.unfinished == []
