"""Every ``lkpersist sessions`` command on Redis Cluster and behind Sentinel, through the real CLI.

On the cluster, the seeded sessions are checked to sit on several masters, so ``ls``, ``count`` and
``purge`` are shown to reach every master, not just the one the client met first.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import redis
from typer.testing import CliRunner

from tests._servers import ClusterServers, unique_prefix
from tests.cli.conftest import Seed, exists, invoke, seed

ACTIVE = [Seed(f"active-{n}", age=10 * n) for n in range(20)]
EXPIRED = [Seed(f"gone-{n}", age=3600 + n, disconnected=True) for n in range(20)]


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


def test_ls_and_count_see_every_session(runner: CliRunner, ha_url: str) -> None:
    seed(ha_url, *ACTIVE, *EXPIRED)
    listed = invoke(runner, ha_url, "sessions", "ls", "--all", "-o", "ndjson")
    assert listed.exit_code == 0, listed.output
    identities = [json.loads(line)["identity"] for line in listed.stdout.splitlines()]
    assert identities == [s.identity for s in ACTIVE] + [s.identity for s in EXPIRED]  # newest first
    for flag, expected in (("--all", 40), ("--active", 20), ("--expired", 20)):
        counted = invoke(runner, ha_url, "sessions", "count", flag)
        assert counted.exit_code == 0, counted.output
        assert counted.stdout.strip() == str(expected)
    page = invoke(runner, ha_url, "sessions", "ls", "--limit", "5")
    assert [line.split()[-1] for line in page.stdout.splitlines()[1:]] == [f"active-{n}" for n in range(5)]


def test_show_and_rm(runner: CliRunner, ha_url: str) -> None:
    seed(ha_url, Seed("carol", language="fr", metadata={"plan": "pro"}, turns=[("user", "bonjour")]))
    shown = invoke(runner, ha_url, "sessions", "show", "carol", "--turns", "5", "-o", "json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert (document["language"], document["metadata"], document["turns"][0]["text"]) == ("fr", {"plan": "pro"}, "bonjour")
    removed = invoke(runner, ha_url, "sessions", "rm", "carol", "nobody")
    assert removed.exit_code == 1
    assert removed.stdout.strip() == "removed 'carol'"
    assert "session not found: 'nobody'" in removed.stderr
    assert not exists(ha_url, "carol")
    assert invoke(runner, ha_url, "sessions", "show", "carol").exit_code == 1


def test_purge_reaches_every_master(runner: CliRunner, ha_url: str) -> None:
    seed(ha_url, *ACTIVE, *EXPIRED)
    dry = invoke(runner, ha_url, "sessions", "purge", "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["purged"] == 20
    done = invoke(runner, ha_url, "sessions", "purge", "-o", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["purged"] == 20
    assert invoke(runner, ha_url, "sessions", "count", "--all").stdout.strip() == "20"
    assert invoke(runner, ha_url, "sessions", "purge", "-o", "json").exit_code == 0
    old = invoke(runner, ha_url, "sessions", "purge", "--older-than", "95s", "-o", "json")
    assert json.loads(old.stdout)["purged"] == 10  # active-10 .. active-19, seen 100 s ago and before
    assert invoke(runner, ha_url, "sessions", "count", "--all").stdout.strip() == "10"


def test_cluster_sessions_sit_on_every_master(redis_cluster: ClusterServers) -> None:
    url = f"{redis_cluster.url}?prefix={unique_prefix()}"
    seed(url, *ACTIVE, *EXPIRED)
    per_node = []
    for port in redis_cluster.ports:
        node = redis.Redis(host="127.0.0.1", port=port)
        try:
            per_node.append(sum(1 for _ in node.scan_iter(match=f"{_prefix(url)}:*}}:s:*", count=1000)))
        finally:
            node.close()
    assert sum(per_node) == 40
    assert all(count > 0 for count in per_node), per_node
    runner = CliRunner()
    assert invoke(runner, url, "sessions", "count", "--all").stdout.strip() == "40"
    purged = invoke(runner, url, "sessions", "purge", "-o", "json")
    assert json.loads(purged.stdout)["purged"] == 20
