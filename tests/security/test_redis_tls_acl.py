"""Redis with least privilege: TLS that verifies the server, and an ACL user confined to the prefix.

Real servers only: a TLS-only redis-server with a CA and certificate generated here, and a redis-server
whose ACL user may touch nothing but ``<prefix>:*`` keys and run only the commands lkpersist sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner, Result

from lkpersist.cli import app
from lkpersist.crypto.codec import PLAIN
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from tests.conftest import start_redis_server
from tests.security._raw import raw_values
from tests.security._sessions import KEY, NEW_KEY
from tests.security._tls import make_authority, start_tls_redis

PREFIX = "lkpacl"
ACL_COMMANDS = (
    "+ping +select +evalsha +script|load "
    "+hget +hgetall +hmget +hset +hdel +del +exists +pexpire +lrange +lindex +lset +lpop +llen +rpush "
    "+sadd +srem +zadd +zrem +zscore +zrange +zrangebyscore +zrevrank +zcount +zcard +zscan "
    "+publish +subscribe +unsubscribe "
    "+get +set +hincrby +hsetnx +pfadd +pfcount "  # analytics
    "+multi +exec"  # an export's reads (one snapshot per bucket)
)
"""The commands lkpersist sends (directly or from its Lua scripts), for the README's ACL line."""


def acl_rules(prefix: str, password: str) -> list[str]:
    return ["on", f">{password}", "resetkeys", f"~{prefix}:*", "resetchannels", f"&{prefix}:*", "-@all",
            *ACL_COMMANDS.split()]


def cli(url: str, *args: str, keys: list[str] | None = None) -> Result:
    env = {"LKPERSIST_ENCRYPTION_KEYS": ",".join(keys or [])}
    return CliRunner().invoke(app, ["--store", url, *args], env=env)


def assert_unusable(result: Result, *words: str) -> None:
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(word in line for word in words), line


async def write_plain_session(url: str, identity: str) -> None:
    async with open_store(url, codec=PLAIN) as store:
        await store.connect(identity)
        await store.update(identity, language="tls-secret-lang", metadata={"m": "tls-secret-meta"})
        await store.append_turn(identity, Turn("user", "tls-secret-turn", 1.0, item_id="a"))


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, Path]]:
    """(port, the server's CA file, an unrelated CA file)."""
    directory = tmp_path_factory.mktemp("tls")
    authority = make_authority(directory, "trusted")
    stranger = make_authority(directory, "stranger")
    proc, port = start_tls_redis(directory, authority)
    try:
        yield port, authority.path, stranger.path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rediss_url(port: int, ca: Path | None, prefix: str = "lkptls") -> str:
    query = f"prefix={prefix}" + ("" if ca is None else f"&ssl_ca_certs={quote(str(ca))}")
    return f"rediss://127.0.0.1:{port}/0?{query}"


def test_rediss_verifies_the_server_and_everything_works(tls_server: tuple[int, Path, Path]) -> None:
    port, ca, _ = tls_server
    url = rediss_url(port, ca)
    asyncio.run(write_plain_session(url, "over-tls"))
    listed = cli(url, "sessions", "ls", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert [session["identity"] for session in json.loads(listed.stdout)] == ["over-tls"]
    assert cli(url, "encrypt", "migrate", keys=[KEY]).exit_code == 0
    shown = cli(url, "sessions", "show", "over-tls", "--turns", "1", "-o", "json", keys=[KEY])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["turns"][0]["text"] == "tls-secret-turn"
    exported = cli(url, "sessions", "export", "--status", "all", keys=[KEY])  # the export's own reads, over TLS
    assert exported.exit_code == 0, exported.output
    (line,) = exported.stdout.splitlines()[1:]
    assert json.loads(line)["turns"][0]["text"] == "tls-secret-turn"


@pytest.mark.parametrize("which", ["another CA", "system CAs"])
def test_rediss_refuses_a_server_it_cannot_verify(tls_server: tuple[int, Path, Path], which: str) -> None:
    port, _, stranger = tls_server
    url = rediss_url(port, stranger if which == "another CA" else None)
    assert_unusable(cli(url, "sessions", "ls"), "unavailable", "certificate verify failed")


def test_plain_redis_url_does_not_talk_to_a_tls_port(tls_server: tuple[int, Path, Path]) -> None:
    port, _, _ = tls_server
    assert_unusable(cli(f"redis://127.0.0.1:{port}/0?socket_timeout=1", "sessions", "ls"), "unavailable")


# --- ACL -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server() -> Iterator[int]:
    import redis

    proc, port = start_redis_server()
    admin: Any = redis.Redis(port=port)
    try:
        admin.execute_command("ACL", "SETUSER", "lkpuser", "reset", *acl_rules(PREFIX, "s3cret-pw"))
        yield port
    finally:
        admin.close()
        proc.terminate()
        proc.wait(timeout=10)


def acl_url(port: int, prefix: str = PREFIX, db: int = 0) -> str:
    return f"redis://lkpuser:s3cret-pw@127.0.0.1:{port}/{db}?prefix={prefix}"


def test_acl_user_confined_to_the_prefix_runs_every_command(acl_server: int, tmp_path: Path) -> None:
    url = acl_url(acl_server)
    asyncio.run(write_plain_session(url, "acl-user"))
    exported = str(tmp_path / "sessions.ndjson")
    steps = [
        ("simulate", "reconnect", "--identity", "simulated", "--gap", "10s"),
        ("sessions", "ls"), ("sessions", "ls", "--all", "-o", "json"), ("sessions", "count"),
        ("sessions", "show", "acl-user", "--turns", "5"),
        ("sessions", "export", "--status", "all", "--file", exported),
        ("sessions", "import", exported, "--on-conflict", "merge"),
        ("encrypt", "status"), ("encrypt", "migrate"), ("encrypt", "rotate"),
        ("sessions", "purge"), ("sessions", "purge", "--older-than", "1d", "--dry-run"),
        ("sessions", "rm", "simulated"),
    ]
    for step in steps:
        result = cli(url, *step, keys=[NEW_KEY, KEY] if step[1] == "rotate" else [KEY])
        assert result.exit_code == 0, (step, result.output)
    admin_url = f"redis://127.0.0.1:{acl_server}/0?prefix={PREFIX}"  # SCAN is beyond the ACL user, by design
    assert b"tls-secret" not in b"\n".join(raw_values(admin_url))


@pytest.mark.parametrize("step", [("sessions", "ls"), ("sessions", "show", "acl-user")])
def test_acl_user_is_refused_outside_its_prefix(acl_server: int, step: tuple[str, ...]) -> None:
    """The confinement is real: the same user under another prefix is refused (so the test above can fail)."""
    assert_unusable(cli(acl_url(acl_server, prefix="elsewhere"), *step), "no permissions")


def test_the_readme_acl_line_grants_what_the_acl_test_grants() -> None:
    """The README's least-privilege line is the one tested here (an export's +multi +exec once went missing)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (line,) = [line for line in readme.splitlines() if line.startswith("ACL SETUSER lkpersist ")]
    granted = {word for word in line.split() if word.startswith("+")}
    assert granted == set(ACL_COMMANDS.split())
