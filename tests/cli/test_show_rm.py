"""``lkpersist sessions show`` and ``rm``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner

from lkpersist.model.session import Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from tests.cli.conftest import LONG_TTL, Seed, exists, invoke, seed

ALICE = Seed(
    "alice", age=5, language="fr", metadata={"plan": "pro"}, context={"summary": "likes tea"},
    turns=[("user", "bonjour"), ("assistant", "salut !"), ("user", "deux\nlignes")],
)
CONTRACT_FIELDS = {"identity", "joined_at", "last_seen", "reconnect_count", "language", "metadata", "context",
                   "connected", "expires_at"}


def test_show_table(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)
    result = invoke(runner, cli_url, "sessions", "show", "alice")
    assert result.exit_code == 0, result.output
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line.strip())
    assert fields["identity"] == "alice" and fields["status"] == "connected"
    assert fields["language"] == "fr" and fields["reconnects"] == "0"
    assert json.loads(fields["metadata"]) == {"plan": "pro"}
    assert json.loads(fields["context"]) == {"summary": "likes tea"}
    assert fields["expires"] == "- (while connected)"
    assert fields["joined"].endswith("(5s ago)") and fields["joined"][19] == "Z"
    assert "bonjour" not in result.stdout  # turns only when asked


def test_show_table_with_turns(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)
    result = invoke(runner, cli_url, "sessions", "show", "alice", "--turns", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TIME (UTC)"))
    turns = lines[start + 1:]
    assert turns[0].split()[1:] == ["assistant", "salut", "!"]
    assert turns[1].split()[1:] == ["user", "deux"] and turns[2].strip() == "lignes"
    assert "bonjour" not in result.stdout


def test_show_json_with_turns(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)
    result = invoke(runner, cli_url, "sessions", "show", "alice", "--turns", "10", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert CONTRACT_FIELDS <= document.keys()
    assert document["identity"] == "alice" and document["language"] == "fr"
    assert document["context"] == {"summary": "likes tea"} and document["connected"] is True
    assert [(t["role"], t["text"], t["item_id"]) for t in document["turns"]] == [
        ("user", "bonjour", "item-0"), ("assistant", "salut !", "item-1"), ("user", "deux\nlignes", "item-2")]
    assert all(isinstance(t["timestamp"], float) for t in document["turns"])
    plain = json.loads(invoke(runner, cli_url, "sessions", "show", "alice", "-o", "json").stdout)
    assert "turns" not in plain and CONTRACT_FIELDS <= plain.keys()


def test_show_not_found_and_expired(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("gone", age=3600, disconnected=True))
    for identity in ("nobody", "gone"):
        result = invoke(runner, cli_url, "sessions", "show", identity, "-o", "json")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == f"error: session not found: '{identity}'\n"


def test_rm_removes_each_and_reports_missing(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("alice"), Seed("bob"), Seed("expired", age=3600, disconnected=True), Seed("keep"))
    result = invoke(runner, cli_url, "sessions", "rm", "alice", "ghost", "bob", "expired")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["removed 'alice'", "removed 'bob'", "removed 'expired'"]
    assert result.stderr.splitlines() == ["error: session not found: 'ghost'"]
    assert [exists(cli_url, i) for i in ("alice", "bob", "expired", "keep")] == [False, False, False, True]


def test_rm_all_present_exits_0(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("alice"))
    result = invoke(runner, cli_url, "sessions", "rm", "alice")
    assert result.exit_code == 0, result.output
    assert invoke(runner, cli_url, "sessions", "rm", "alice").exit_code == 1


def test_rm_refuses_an_empty_identity_before_removing_anything(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("alice"))
    result = invoke(runner, cli_url, "sessions", "rm", "alice", "")
    assert result.exit_code == 2
    assert "identity must be a non-empty string" in result.stderr
    assert exists(cli_url, "alice")


def test_show_says_how_many_turns_the_session_holds(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)
    table = invoke(runner, cli_url, "sessions", "show", "alice")
    fields = dict(line.split(None, 1) for line in table.stdout.splitlines() if " " in line.strip())
    assert fields["turns"] == "3 stored"
    assert json.loads(invoke(runner, cli_url, "sessions", "show", "alice", "-o", "json").stdout)["turn_count"] == 3


def test_show_turns_all(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("long", turns=[("user", f"line {i}") for i in range(30)]))
    result = invoke(runner, cli_url, "sessions", "show", "long", "--turns", "all", "-o", "json")
    assert result.exit_code == 0, result.output
    assert [t["text"] for t in json.loads(result.stdout)["turns"]] == [f"line {i}" for i in range(30)]
    table = invoke(runner, cli_url, "sessions", "show", "long", "-t", "ALL")
    assert table.exit_code == 0 and "line 0" in table.stdout and "line 29" in table.stdout


def test_show_turns_must_be_a_number_or_all(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)
    for bad in ("0", "-3", "every", ""):
        result = invoke(runner, cli_url, "sessions", "show", "alice", "--turns", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert result.stdout == ""
        assert result.stderr == f"error: --turns takes a positive number of turns or 'all', not {bad!r}\n"


def test_show_makes_a_blank_identity_visible(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("   "))
    result = invoke(runner, cli_url, "sessions", "show", "   ")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split(None, 1) == ["identity", "'   '"]


def _two_agents_two_devices(url: str) -> None:
    """Two agents serving ``ana`` (connections), who came from a laptop, then a phone; one agent left."""
    from lkpersist.clock import VirtualClock
    from lkpersist.model.presence import DeviceSeen
    from lkpersist.stores import open_store

    async def write() -> None:
        clock = VirtualClock(time.time() - 120)
        store = open_store(url, clock=clock)
        try:
            await store.arrive("ana", "voice:AJ_1:aaaa1111", device=DeviceSeen("laptop-1", "Firefox on Linux"))
            clock.advance(60)
            await store.arrive("ana", "notes:AJ_2:bbbb2222", device=DeviceSeen("phone-1", "Chrome on Android"))
            await store.arrive("ana", "gone:AJ_3:cccc3333")
            clock.advance(30)
            await store.leave("ana", "gone:AJ_3:cccc3333")
            await store.beat("ana", "voice:AJ_1:aaaa1111")
        finally:
            await store.close()

    asyncio.run(write())


def test_show_lists_live_connections_and_devices(runner: CliRunner, cli_url: str) -> None:
    _two_agents_two_devices(cli_url)
    result = invoke(runner, cli_url, "sessions", "show", "ana")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("CONNECTION"))
    assert lines[at].split() == ["CONNECTION", "SINCE", "(UTC)", "LAST", "BEAT"]
    rows = {line.split()[0]: line for line in lines[at + 1:at + 3]}
    assert rows.keys() == {"voice:AJ_1:aaaa1111", "notes:AJ_2:bbbb2222"}
    assert rows["voice:AJ_1:aaaa1111"].endswith("30s ago") and "(2m ago)" in rows["voice:AJ_1:aaaa1111"]
    assert rows["notes:AJ_2:bbbb2222"].endswith("1m ago")
    assert "gone:AJ_3" not in result.stdout
    at = next(i for i, line in enumerate(lines) if line.startswith("DEVICE"))
    assert lines[at + 1].split()[:4] == ["phone-1", "Chrome", "on", "Android"]  # most recently seen first
    assert lines[at + 2].split()[:4] == ["laptop-1", "Firefox", "on", "Linux"]
    fields = dict(line.split(None, 1) for line in lines[:at] if " " in line.strip())
    assert fields["visit"] == "1 (greeted)" and fields["reconnects"] == "0"


def test_show_json_has_connections_and_devices(runner: CliRunner, cli_url: str) -> None:
    _two_agents_two_devices(cli_url)
    document = json.loads(invoke(runner, cli_url, "sessions", "show", "ana", "-o", "json").stdout)
    assert sorted(c["id"] for c in document["connections"]) == ["notes:AJ_2:bbbb2222", "voice:AJ_1:aaaa1111"]
    assert all(c["since"] <= c["last_beat"] for c in document["connections"])
    assert [(d["device_id"], d["label"]) for d in document["devices"]] == [
        ("laptop-1", "Firefox on Linux"), ("phone-1", "Chrome on Android")]
    assert all(d["first_seen"] <= d["last_seen"] for d in document["devices"])


def test_show_without_live_connections_says_so(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("left", age=5, disconnected=True))
    result = invoke(runner, cli_url, "sessions", "show", "left")
    assert result.exit_code == 0, result.output
    assert "no live connection" in result.stdout and "DEVICE" not in result.stdout


def test_show_counts_the_sessions_events(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, ALICE)

    async def come_back() -> None:
        store = open_store(cli_url)
        try:
            await store.disconnect("alice")
            await store.connect("alice")
            await store.append_turn("alice", Turn("user", "encore", time.time(), "item-9"))
        finally:
            await store.close()

    asyncio.run(come_back())
    result = invoke(runner, cli_url, "sessions", "show", "alice")
    assert result.exit_code == 0, result.output
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line.strip())
    assert fields["events"] == "2 connections, 1 return, 4 turns recorded"
    document = json.loads(invoke(runner, cli_url, "sessions", "show", "alice", "-o", "json").stdout)
    assert document["events"] == {"connections": 2, "returns": 1, "turns": 4}
    assert document["reconnect_count"] == 1


def test_show_does_not_lend_a_new_session_the_counters_of_an_expired_one(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("gone", age=7200, disconnected=True, ttl_policy=TTLPolicy(first=60.0)))
    seed(cli_url, Seed("gone"))  # expired long ago: this connect starts a new session
    document = json.loads(invoke(runner, cli_url, "sessions", "show", "gone", "-o", "json").stdout)
    assert document["reconnect_count"] == 0
    assert document["events"] == {"connections": 1, "returns": 0, "turns": 0}


def test_show_does_not_lend_an_imported_session_the_counters_it_replaced(
    runner: CliRunner, cli_url: str, tmp_path: Path
) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    seed(elsewhere, Seed("alice", age=3600, disconnected=True, ttl_policy=LONG_TTL))
    dump = tmp_path / "alice.ndjson"
    assert invoke(runner, elsewhere, "sessions", "export", "--file", str(dump)).exit_code == 0
    seed(cli_url, ALICE)  # counted here: one connection, three turns
    result = invoke(runner, cli_url, "sessions", "import", str(dump), "--on-conflict", "replace")
    assert result.exit_code == 0, result.output
    document = json.loads(invoke(runner, cli_url, "sessions", "show", "alice", "-o", "json").stdout)
    assert document["turn_count"] == 0 and document["language"] is None  # the imported session
    assert document["events"] is None  # the counters here were the replaced session's
    table = invoke(runner, cli_url, "sessions", "show", "alice").stdout
    assert next(line for line in table.splitlines() if line.startswith("events")).split(None, 1)[1] == "- (not counted)"
