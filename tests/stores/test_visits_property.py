"""Random interleavings of 2–3 controllers serving one participant: exact visits, one greeting each.

A seeded generator drives arrivals, leaves, heartbeats, greeting claims, device switches
(``duplicate_identity`` leaves), controllers dying without a leave, and clock jumps past the presence
timeout, on an injected clock. Beside the store, the test keeps its own small account of which
connections are live (live while ``now - last beat <= 90 s``): a visit starts when a connection arrives
while none is live and no switch is pending. After every step the store's ``reconnect_count`` must be
visits − 1, and when a visit ends, exactly one caller must have been given its greeting.

The single-connection form takes part too: connection ``-`` arrives through ``connect`` (which does not
claim) followed by ``claim_greeting``, as a controller of the previous release did; repeated claims at
random moments must never take a second greeting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.presence import DUPLICATE_IDENTITY
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.conftest import T0
from tests.stores.test_presence_contract import PRESENCE_BACKENDS

IDENTITY = "visitor"
TIMEOUT = 90.0
GRACE = 5.0
EDGE = 0.125
STEPS = 80
SEEDS = {"memory": range(150), "sqlite": range(40), "redis": range(60), "redis-cluster": range(15)}
# TTLs far beyond any run, so the session never expires and every visit belongs to one session.
POLICY = TTLPolicy(first=1e7, returning=1e7, frequent=1e7, presence_timeout=TIMEOUT)


@dataclass
class Account:
    """The test's own account of presence, kept without the store's rule module."""

    beats: dict[str, float] = field(default_factory=dict)
    switch_until: float | None = None
    visits: int = 0
    greetings: list[int] = field(default_factory=list)
    """Greetings given in each visit so far (index 0: visit 1)."""

    def live(self, now: float) -> list[str]:
        self.beats = {c: t for c, t in self.beats.items() if now - t <= TIMEOUT}
        return sorted(self.beats)

    def arriving(self, connection: str, now: float) -> bool:
        """Record an arrival; True when it opens a visit."""
        opens = not self.live(now) and (self.switch_until is None or now >= self.switch_until)
        if opens:
            self.visits += 1
            self.greetings.append(0)
        self.beats[connection], self.switch_until = now, None
        return opens

    def leaving(self, connection: str, now: float, switch: bool) -> None:
        was_live = connection in self.live(now)
        self.beats.pop(connection, None)
        if was_live and not self.beats:
            self.switch_until = now + GRACE if switch else None


async def _step(store: SessionStore, rng: random.Random, clock: VirtualClock, account: Account, log: list[str]) -> None:
    connections = ["agent-a", "agent-b", "agent-c"][: rng.choice((2, 3))] + ["-"]
    connection, now, roll = rng.choice(connections), clock.now(), rng.random()
    if roll < 0.3:
        opens = account.arriving(connection, now)
        if connection == "-":  # the single-connection controller: connect, then claim
            result = await store.connect(IDENTITY)
            assert result.was_connected is not opens
            account.greetings[-1] += await store.claim_greeting(IDENTITY)
        else:
            arrival = await store.arrive(IDENTITY, connection)
            assert (arrival.new_visit, arrival.visit) == (opens, account.visits)
            account.greetings[-1] += arrival.greet
        log.append(f"{now - T0:.0f} arrive {connection} opens={opens}")
    elif roll < 0.5:
        switch = rng.random() < 0.3
        account.leaving(connection, now, switch)
        reason = DUPLICATE_IDENTITY if switch else "client_initiated"
        await store.leave(IDENTITY, connection, reason=reason)
        log.append(f"{now - T0:.0f} leave {connection} {reason}")
    elif roll < 0.7:
        live = connection in account.live(now)
        if live:
            account.beats[connection] = now
        assert await store.beat(IDENTITY, connection) is live, log
        log.append(f"{now - T0:.0f} beat {connection} live={live}")
    elif roll < 0.8:  # a repeated claim (a second callback, another agent): the visit is greeted already
        assert await store.claim_greeting(IDENTITY) is False, log
        log.append(f"{now - T0:.0f} claim")
    else:  # time passes; a controller that stops beating (died without a leave) goes stale
        seconds = _pause(rng, account, now)
        clock.advance(seconds)
        log.append(f"advance {seconds}")


def _pause(rng: random.Random, account: Account, now: float) -> float:
    """Seconds to the next step, in 1/8 s steps (exact in binary, so no boundary is a rounding accident):
    short, long, past the timeout, or onto an edge (a connection's last live moment, a switch's end)."""
    edges = [t + TIMEOUT + d - now for t in account.beats.values() for d in (0.0, EDGE)]
    if account.switch_until is not None:
        edges += [account.switch_until + d - now for d in (-EDGE, 0.0)]
    choices = [rng.uniform(0.5, 4.0), rng.uniform(5, 40), rng.uniform(TIMEOUT + 0.5, 200)]
    choices += [edge for edge in edges if edge > 0]
    return round(rng.choice(choices) / EDGE) * EDGE or EDGE


async def _run(store: SessionStore, clock: VirtualClock, seed: int) -> Account:
    rng, account, log = random.Random(seed), Account(), [f"seed {seed}"]
    for _ in range(STEPS):
        visits_before = account.visits
        await _step(store, rng, clock, account, log)
        if account.visits > visits_before > 0:  # a visit ended and another began: the ended one is settled
            assert account.greetings[visits_before - 1] == 1, log
        session = await store.get(IDENTITY)
        if account.visits:
            assert session is not None and session.reconnect_count == account.visits - 1, log
            assert session.connected is bool(account.live(clock.now())), log
    return account


@pytest.mark.parametrize("backend", PRESENCE_BACKENDS)
async def test_random_interleavings_greet_each_visit_once(store_url: str, backend: str) -> None:
    visits = 0
    for seed in SEEDS[backend]:
        clock = VirtualClock(T0)
        store = open_store(store_url, clock=clock, ttl_policy=POLICY, switch_grace=GRACE)
        try:
            await store.delete(IDENTITY)
            account = await _run(store, clock, seed)
            assert account.greetings == [1] * account.visits, f"seed {seed}"
            visits += account.visits
        finally:
            await store.close()
    assert visits > 3 * len(SEEDS[backend])  # the generator really produced returns

