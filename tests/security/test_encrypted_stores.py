"""Encryption at rest through real backends: raw SQLite rows and raw Redis values hold no plaintext.

The memory backend keeps Python objects, never stored text, so for it only the plumbing is checked
(the codec is accepted and reads work); the at-rest property is checked where there is a rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.crypto.codec import PLAIN, ValueCodec
from lkpersist.crypto.config import codec_from_env
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.exceptions import DecryptionError
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.conftest import store_url_for
from tests.security._raw import raw_values as _raw_values

KEY, OTHER_KEY = generate_key(), generate_key()
IDENTITY = "p_integration"
TURN_TEXT = "my blood type is AB negative and my PIN is 8472"
METADATA = {"email": "alice.confidential@example.org", "plan": "premium-hidden"}
CONTEXT = {"summary": "talked about the custody hearing on Monday"}
LANGUAGE = "x-secret-dialect"
PLAINTEXTS = [TURN_TEXT, *METADATA.values(), CONTEXT["summary"], LANGUAGE]


@pytest.fixture(params=["sqlite", "redis"])
def at_rest_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(str(request.param), tmp_path, request)


async def _write_session(url: str, clock: VirtualClock, codec: ValueCodec) -> None:
    async with open_store(url, clock=clock, codec=codec) as store:
        await store.connect(IDENTITY)
        await store.update(IDENTITY, language=LANGUAGE, metadata=METADATA, context=CONTEXT)
        await store.append_turn(IDENTITY, Turn("user", TURN_TEXT, clock.now(), item_id="item-1"))
        await store.append_turn(IDENTITY, Turn("assistant", "noted: " + TURN_TEXT, clock.now(), item_id="item-2"))


@pytest.fixture
async def opened(at_rest_url: str, clock: VirtualClock) -> AsyncIterator[str]:
    """The URL of a store holding one encrypted session."""
    await _write_session(at_rest_url, clock, FernetCodec([KEY]))
    yield at_rest_url


def _leaks(url: str) -> list[str]:
    blob = b"\n".join(_raw_values(url, with_files=True))
    return [text for text in PLAINTEXTS if text.encode() in blob]


# --- the properties ------------------------------------------------------------------------------


async def test_no_personal_plaintext_at_rest(opened: str) -> None:
    assert _leaks(opened) == []


async def test_plain_store_would_show_it(at_rest_url: str, clock: VirtualClock) -> None:
    """The raw reader can see plaintext when there is some: the test above can fail."""
    await _write_session(at_rest_url, clock, PLAIN)
    assert set(_leaks(at_rest_url)) == set(PLAINTEXTS)


async def test_reading_with_the_key_returns_everything(opened: str, clock: VirtualClock) -> None:
    async with open_store(opened, clock=clock, codec=FernetCodec([OTHER_KEY, KEY])) as store:
        session = await store.require(IDENTITY)
        turns = await store.recent_turns(IDENTITY)
    assert (session.language, session.metadata, session.context) == (LANGUAGE, METADATA, CONTEXT)
    assert [t.text for t in turns] == [TURN_TEXT, "noted: " + TURN_TEXT]


@pytest.mark.parametrize("codec_name", ["wrong key", "no key"])
async def test_reading_without_the_right_key_raises(opened: str, clock: VirtualClock, codec_name: str) -> None:
    codec = FernetCodec([OTHER_KEY]) if codec_name == "wrong key" else codec_from_env({})
    async with open_store(opened, clock=clock, codec=codec) as store:
        with pytest.raises(DecryptionError) as on_get:
            await store.get(IDENTITY)
        with pytest.raises(DecryptionError) as on_turns:
            await store.recent_turns(IDENTITY)
    for caught in (on_get, on_turns):
        message = str(caught.value)
        assert "\n" not in message and KEY not in message and OTHER_KEY not in message
        assert not any(text in message for text in PLAINTEXTS)


async def test_plaintext_records_read_during_migration_unless_strict(at_rest_url: str, clock: VirtualClock) -> None:
    await _write_session(at_rest_url, clock, PLAIN)
    async with open_store(at_rest_url, clock=clock, codec=FernetCodec([KEY])) as store:
        assert (await store.require(IDENTITY)).language == LANGUAGE
    async with open_store(at_rest_url, clock=clock, codec=FernetCodec([KEY], strict=True)) as store:
        with pytest.raises(DecryptionError, match="strict"):
            await store.get(IDENTITY)


async def test_memory_store_accepts_the_codec(clock: VirtualClock) -> None:
    codec = FernetCodec([KEY])
    store: SessionStore = open_store("memory://", clock=clock, codec=codec)
    async with store:
        assert store.codec is codec
        await store.connect(IDENTITY)
        await store.update(IDENTITY, language=LANGUAGE)
        assert (await store.require(IDENTITY)).language == LANGUAGE


@pytest.mark.parametrize("codec_name", ["wrong key", "no key", "strict, plaintext stored"])
async def test_failed_decryption_modifies_nothing(opened: str, clock: VirtualClock, codec_name: str) -> None:
    """A wrong key is an error naming the session, and the error leaves the store as it was (issue 5:
    "nothing modified"): on Redis the scripts check key ids before writing, in the same round trip."""
    url = opened
    codec: ValueCodec = FernetCodec([OTHER_KEY]) if codec_name == "wrong key" else codec_from_env({})
    if codec_name.startswith("strict"):
        url = opened.replace("sessions.db", "plain.db")
        if url.startswith("redis"):
            url += "-plain"
        await _write_session(url, clock, PLAIN)
        codec = FernetCodec([KEY], strict=True)
    raw_before = sorted(_raw_values(url))
    async with open_store(url, clock=clock, codec=codec) as store:
        attempts = (store.connect, store.disconnect, store.get, store.recent_turns,
                    lambda identity: store.update(identity, metadata={"new": "value"}))
        for attempt in attempts:
            with pytest.raises(DecryptionError, match=f"cannot decrypt session '{IDENTITY}': "):
                await attempt(IDENTITY)
    assert sorted(_raw_values(url)) == raw_before
