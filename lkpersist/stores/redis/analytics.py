"""The Redis store's analytics: Lua fragments the connect and append_turn scripts splice in, the KEYS and
ARGV they take, and the reads behind ``daily_stats`` and ``session_counters``.

Written in the same script as the operation, so still one round trip per connect and per turn. The
day's distinct identities are a HyperLogLog (about 0.8 % standard error), the counters a hash; every
key gets a TTL running to the end of its day plus the retention (a session's counters: retention
from their last change), judged by the store clock as every other TTL here. On a Cluster the day keys
are one pair per bucket, in the bucket's slot (see :mod:`~lkpersist.stores.redis.keys`), and a read sums
the buckets; elsewhere one pair per day.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from lkpersist.clock import from_ms, to_ms
from lkpersist.model.analytics import (
    COUNTERS,
    DAY,
    Analytics,
    DailyStats,
    OfflineTally,
    SessionCounters,
    day_from_counts,
    day_of,
)
from lkpersist.stores.redis.keys import KeyLayout
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline

# tally_connect(day, users, counters, hash, kept_until, retention, now, returning, joined): count one
# connect on the day (KEYS day counters hash and users HyperLogLog, both dropped at ``kept_until``: the
# day's end plus the retention, ms of the store clock, as ``now``) and in the session's counters (kept
# ``retention`` ms after their last change; a new session starts them again). ``hash`` is '' when this
# client already added it to today's HyperLogLog (PFADD is idempotent: skipping it changes nothing). Only
# connections and new sessions are stored: every connect is one or the other, so returns are their
# difference (a session's, its connections less its first). Spliced into lua.CONNECT, called at its end.
TALLY_CONNECT = """
local function tally_connect(day, users, counters, hash, kept_until, retention, now, returning, joined)
  if hash ~= '' then redis.call('PFADD', users, hash) end
  if redis.call('HINCRBY', day, 'connections', 1) == 1 then
    redis.call('PEXPIRE', day, kept_until - now)
    redis.call('PEXPIRE', users, kept_until - now)
  end
  if returning == 1 then
    if redis.call('HINCRBY', counters, 'connections', 1) == 1 then redis.call('HSET', counters, 'joined', joined) end
  else
    redis.call('HINCRBY', day, 'new_sessions', 1)
    redis.call('HSET', counters, 'joined', joined, 'connections', 1, 'turns', 0)
  end
  redis.call('PEXPIRE', counters, retention)
end
"""

# tally_turn(day, counters, kept_until, retention, now): count one stored turn on the day and in the
# session's counters (when they are kept); times as tally_connect's. Spliced into lua.APPEND_TURN.
TALLY_TURN = """
local function tally_turn(day, counters, kept_until, retention, now)
  if redis.call('HINCRBY', day, 'turns', 1) == 1 then redis.call('PEXPIRE', day, kept_until - now) end
  if redis.call('EXISTS', counters) == 1 then
    redis.call('HINCRBY', counters, 'turns', 1)
    redis.call('PEXPIRE', counters, retention)
  end
end
"""

# tally_offline(day, users, counters, hash, kept_until, retention, now, connections, new_sessions, turns,
# joined): count what an outage served for one identity (model.analytics.offline_tally), keys and times as
# tally_connect's; the session's counters are added to when they are the merged session's (same joined),
# else started again from these. Spliced into reconcile.WRITE_STATE, called when it is given these keys.
TALLY_OFFLINE = """
local function tally_offline(day, users, counters, hash, kept_until, retention, now, connections, new_sessions, turns, joined)
  if connections > 0 then
    redis.call('PFADD', users, hash)
    redis.call('PEXPIRE', users, kept_until - now)
    redis.call('HINCRBY', day, 'connections', connections)
  end
  if new_sessions > 0 then redis.call('HINCRBY', day, 'new_sessions', new_sessions) end
  if turns > 0 then redis.call('HINCRBY', day, 'turns', turns) end
  redis.call('PEXPIRE', day, kept_until - now)
  if redis.call('HGET', counters, 'joined') == joined then
    redis.call('HINCRBY', counters, 'connections', connections)
    redis.call('HINCRBY', counters, 'turns', turns)
  else
    redis.call('HSET', counters, 'joined', joined, 'connections', connections, 'turns', turns)
  end
  redis.call('PEXPIRE', counters, retention)
end
"""

# keep secret. KEYS[1] the secret's key, ARGV[1] the one proposed. Returns the kept secret (ARGV[1]
# when none was kept yet).
KEEP_SECRET = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

# daily read, one bucket (or, off a Cluster, the one set of day keys). KEYS: each date's counters hash
# then its users HyperLogLog, oldest date first. Returns {counters flat, distinct count} per date, then the
# distinct count over all the dates (redis-py refuses PFCOUNT in a cluster pipeline; a script is routed).
DAILY_READ = """
local out = {}
local users = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
  out[#out + 1] = redis.call('PFCOUNT', KEYS[i + 1])
  users[#users + 1] = KEYS[i + 1]
end
out[#out + 1] = redis.call('PFCOUNT', unpack(users))
return out
"""

_CACHE_SIZE = 4096


class RedisAnalytics:
    """One store's analytics keys and reads; ``connect_part`` / ``turn_part`` feed its scripts.

    Redis errors come out as redis-py raises them: the store translates them (``errors`` imports the
    scripts, which import this module)."""

    def __init__(self, client: Any, layout: KeyLayout, analytics: Analytics) -> None:
        self._client, self._layout, self._analytics = client, layout, analytics
        self._sharded = isinstance(client, RedisCluster)
        self._identities: dict[str, tuple[int, bytes, bytes]] = {}
        self._day_number, self._days = -1, dict[int, tuple[bytes, bytes, bytes]]()
        self._retention = b"%d" % to_ms(analytics.retention)
        self._daily_read = client.register_script(DAILY_READ)
        self._keep_secret = client.register_script(KEEP_SECRET)

    async def ensure_secret(self) -> None:
        """Load (or keep) the store's hash secret before the first write: one round trip per store object."""
        if not self._analytics.ready:
            key = self._layout.analytics_secret_key
            kept = await self._keep_secret(keys=[key], args=[self._analytics.proposed_secret])  # EVALSHA: ACL-safe
            self._analytics.use_secret(kept.decode("utf-8"))

    async def kept_secret(self) -> str | None:
        kept = await self._client.get(self._layout.analytics_secret_key)
        return None if kept is None else str(kept.decode("utf-8"))

    def _identity(self, identity: str) -> tuple[int, bytes, bytes]:
        """The identity's bucket, keyed hash and counters key, cached for recently seen identities."""
        found = self._identities.get(identity)
        if found is None:
            bucket = self._layout.bucket_of(self._layout.encode_identity(identity))
            hashed = self._analytics.identity_hash(identity)
            found = (bucket, hashed.encode("ascii"), self._layout.analytics_session_key(bucket, hashed).encode("utf-8"))
            if len(self._identities) >= _CACHE_SIZE:
                self._identities.clear()
            self._identities[identity] = found
        return found

    def _day(self, bucket: int, now: float) -> tuple[bytes, bytes, bytes]:
        """The day's counters and users keys for ``bucket``, and when they are dropped (ms), cached per day."""
        number = int(now // DAY)
        if number != self._day_number:
            self._day_number, self._days = number, {}
        found = self._days.get(bucket)
        if found is None:
            day = day_of(now)
            counts, users = self._layout.analytics_day_keys(bucket, day, self._sharded)
            until = b"%d" % to_ms(self._analytics.kept_until(day))
            found = self._days[bucket] = (counts.encode("utf-8"), users.encode("utf-8"), until)
        return found

    def connect_part(self, identity: str, now: float) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """KEYS (day counters, day users, session counters) and ARGV (hash, kept until, retention) of
        ``tally_connect``."""
        bucket, hashed, counters = self._identity(identity)
        counts, users, until = self._day(bucket if self._sharded else 0, now)
        self._analytics.day(now)  # a new day starts with nobody counted
        counted = self._analytics.counted_today(identity)
        return (counts, users, counters), (b"" if counted else hashed, until, self._retention)

    def connected(self, identity: str) -> None:
        """After a connect's script succeeded: the identity is in today's HyperLogLog (see tally_connect)."""
        self._analytics.mark_counted(identity)

    def turn_part(self, identity: str, now: float) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """KEYS (day counters, session counters) and ARGV (kept until, retention) of ``tally_turn``."""
        bucket, _, counters = self._identity(identity)
        counts, _, until = self._day(bucket if self._sharded else 0, now)
        return (counts, counters), (until, self._retention)

    async def daily(self, dates: list[str]) -> DailyStats:
        """Every day's counters and distinct count, and the window's distinct count: one script per bucket
        (one in all off a Cluster), sent as one pipeline."""
        buckets = range(self._layout.buckets) if self._sharded else [0]
        keyed = [[key for d in dates for key in self._layout.analytics_day_keys(b, d, self._sharded)] for b in buckets]

        def fill(pipe: Any) -> None:
            for keys in keyed:
                queue_script(pipe, self._daily_read, keys, ())

        replies = await run_pipeline(self._client, [self._daily_read], fill)
        return _summed(dates, [part for reply in replies for part in reply])

    def offline_part(self, identity: str, tally: OfflineTally) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """KEYS (the tally's day counters and users, session counters) and ARGV (hash, kept until, retention,
        connections, new sessions, turns, joined ms) of ``tally_offline``."""
        bucket, hashed, counters = self._identity(identity)
        counts, users = self._layout.analytics_day_keys(bucket if self._sharded else 0, tally.day, self._sharded)
        until = b"%d" % to_ms(self._analytics.kept_until(tally.day))
        numbers = (tally.connections, tally.new_sessions, tally.turns, to_ms(tally.joined_at))
        return (counts.encode("utf-8"), users.encode("utf-8"), counters), (
            hashed, until, self._retention, *(b"%d" % n for n in numbers))

    async def counters(self, identity: str) -> SessionCounters | None:
        fields = await self._client.hgetall(self._identity(identity)[2])
        return counters_from_hash(fields)


def _summed(dates: list[str], replies: list[Any]) -> DailyStats:
    """Sum the per-bucket replies of :meth:`RedisAnalytics.daily` (a bucket's identities are its own)."""
    per_bucket = 2 * len(dates) + 1
    active, distinct = [0] * len(dates), 0
    counts: list[dict[str, int]] = [dict.fromkeys(COUNTERS, 0) for _ in dates]
    for start in range(0, len(replies), per_bucket):
        chunk = replies[start:start + per_bucket]
        for index in range(len(dates)):
            flat = chunk[2 * index]
            for field, value in zip(flat[::2], flat[1::2], strict=True):
                name = field.decode("utf-8")
                if name in counts[index]:
                    counts[index][name] += int(value)
            active[index] += int(chunk[2 * index + 1])
        distinct += int(chunk[-1])
    for day in counts:
        day["returns"] = day["connections"] - day["new_sessions"]  # every connect is a return or a new session
    return DailyStats([day_from_counts(d, active[i], counts[i]) for i, d in enumerate(dates)], distinct)


def counters_from_hash(fields: dict[bytes, bytes]) -> SessionCounters | None:
    """A session's counters from its analytics hash; None when there is none."""
    if not fields:
        return None
    values = {key.decode("utf-8"): int(value) for key, value in fields.items()}
    connections = values.get("connections", 0)
    return SessionCounters(from_ms(values.get("joined", 0)), connections, max(connections - 1, 0), values.get("turns", 0))


__all__ = [
    "DAILY_READ", "KEEP_SECRET", "TALLY_CONNECT", "TALLY_OFFLINE", "TALLY_TURN", "RedisAnalytics", "counters_from_hash",
]
