"""The reconnect simulation behind ``lkpersist simulate reconnect``: real controller, real agent, no server.

A participant joins, talks for a few turns, leaves; the clock jumps ``gap`` seconds; the participant
comes back — ``times`` times. Every arrival runs in ``agents`` new agent jobs (each a fresh
``AgentSession`` with the package's :class:`~lkpersist.agent.ScriptedLLM` and a fresh
:class:`~lkpersist.agent.SessionPersistence`, see :mod:`lkpersist.sim.agents`), so whatever an agent
knows about an earlier visit came from the store; with several, exactly one of them greets each visit,
with the store's visit number. ``device_switch`` also moves the participant to another device in every
visit (:mod:`lkpersist.sim.switch`): the visit must go on, without a "welcome back". Room events go through a real
``rtc.Room`` (see :mod:`lkpersist.sim.roomsim`); time is a :class:`~lkpersist.clock.VirtualClock`
shared with the store, so "6 minutes later" takes no time.

The verdict compares what happened with what the store's TTL policy promises: a return is expected when
the gap is shorter than the policy's TTL for the visit the agent last saw. An expired session coming
back as new is therefore a *passing* outcome, not a failure — and a store that forgets too early fails.

A first visit past the summary cap (``--turns 50`` and more) is summarised, and its return must restore
the summary: see :mod:`lkpersist.sim.long_conversation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lkpersist.agent.controller import GreetingDecision
from lkpersist.agent.greetings import DEFAULT_GREETINGS, GreetingTemplates
from lkpersist.agent.history import RESTORED_MARK
from lkpersist.clock import VirtualClock
from lkpersist.durations import format_duration
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import Session
from lkpersist.sim import long_conversation as long
from lkpersist.sim.agents import Agents, Job
from lkpersist.sim.scripted_llm import ScriptedLLM
from lkpersist.sim.switch import FIRST_DEVICE, SWITCH_TURNS, switch_device
from lkpersist.stores.base import SessionStore

USER_LINES = (
    "Hi, I'd like to book a table for two.",
    "Make it Friday at eight in the evening.",
    "Please note that it is a birthday.",
    "Do you have vegetarian options?",
    "Can we sit by the window?",
)
FOLLOW_UP = "Where were we?"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of the timeline; ``at`` is virtual seconds since the simulation started."""

    at: float
    actor: str
    text: str


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict condition."""

    name: str
    ok: bool
    detail: str


@dataclass
class SimulationReport:
    """Everything the simulation saw, and its verdict (``ok``)."""

    identity: str
    gap: float
    times: int
    turns: int
    agents: int = 1
    device_switch: bool = False
    timeline: list[TimelineEvent] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    decisions: list[GreetingDecision] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    final_session: Session | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The ``-o json`` document."""
        return {
            "identity": self.identity,
            "gap_seconds": self.gap,
            "times": self.times,
            "turns": self.turns,
            "agents": self.agents,
            "device_switch": self.device_switch,
            "ok": self.ok,
            "outcomes": self.outcomes,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "visits": [_decision_dict(d) for d in self.decisions],
            "timeline": [{"at": e.at, "actor": e.actor, "text": e.text} for e in self.timeline],
            "session": None if self.final_session is None else self.final_session.to_dict(),
        }


def _decision_dict(decision: GreetingDecision) -> dict[str, Any]:
    return {
        "returning": decision.returning,
        "visit": decision.visit,
        "greeted": decision.greet,
        "greeting": decision.text,
        "language": decision.language,
        "restored_turns": decision.restored_turns,
        "switched": decision.switched,
        "store_ok": decision.store_ok,
        "decision_ms": round(decision.elapsed * 1000, 3),
    }


class _Simulation:
    def __init__(
        self, store: SessionStore, clock: VirtualClock, report: SimulationReport, greetings: GreetingTemplates
    ) -> None:
        self.store, self.clock, self.report, self.greetings = store, clock, report, greetings
        self.start = clock.now()
        self.previous_lines: list[str] = []
        self.arrivals = 0

    @property
    def identity(self) -> str:
        return self.report.identity

    @property
    def decisions(self) -> list[GreetingDecision]:
        return self.report.decisions

    def note(self, actor: str, text: str, *, shown: bool = True) -> None:
        if shown:
            self.report.timeline.append(TimelineEvent(round(self.clock.now() - self.start, 3), actor, text))

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.report.checks.append(Check(name, ok, detail))

    async def snapshot(self, label: str) -> Session | None:
        session = await self.store.get(self.report.identity)
        turns = len(await self.store.recent_turns(self.report.identity)) if session is not None else 0
        self.note("store", f"{label}: {_describe(session, self.clock.now(), turns)}")
        return session

    async def arrive(self) -> tuple[Agents, GreetingDecision | None]:
        """A new arrival in new jobs; the decision of the one that greets (else the first to decide)."""
        agents = Agents(self.store, self.greetings, self.report.decisions, self.report.agents, self.arrivals)
        self.arrivals += 1
        await agents.start()
        decisions_before = len(self.report.decisions)
        identity = self.report.identity
        jobs = "a new agent job; its memory is empty" if self.report.agents == 1 else (
            f"{self.report.agents} new agent jobs in the room, sharing the store; their memory is empty")
        self.note("room", f"participant_connected {identity!r} ({jobs})")
        agents.join(identity, FIRST_DEVICE)
        await agents.settle()
        agents.repeat_join(identity)
        self.note("room", "participant_connected delivered again (a repeated event)")
        await agents.settle()
        for job in agents.jobs:
            for text in job.said:
                self.note(_speaker(job, agents), f"says: {text}")
        new = self.report.decisions[decisions_before:]
        self.judge_visit_numbers(new)
        return agents, next((d for d in new if d.greet), new[0] if new else None)

    def judge_visit_numbers(self, decisions: list[GreetingDecision]) -> None:
        """With several agents, all of them must see the one visit number the greeting speaks."""
        if self.report.agents > 1:
            numbers = sorted({d.visit for d in decisions})
            greeters = sum(d.greet for d in decisions)
            self.check(f"arrival {self.arrivals}: one visit number across {self.report.agents} agents",
                       len(numbers) == 1 and greeters == 1, f"visit numbers {numbers}, {greeters} greeter(s)")

    async def converse(self, agents: Agents, lines: list[str]) -> None:
        job = agents.main
        hidden = long.hidden_lines(len(lines))
        for index, line in enumerate(lines):
            if index == long.SHOWN_EXCHANGES and len(hidden):
                self.note("user", f"… {len(hidden)} more exchanges …")
            self.note("user", line, shown=index not in hidden)
            spoken = len(job.said)
            await job.session.run(user_input=line)
            await agents.settle()
            for text in job.said[spoken:]:
                self.note("agent", f"says: {text}", shown=index not in hidden)
        if written := job.persistence.conversation.summariser.written:
            self.note("llm", f"summarised the oldest turns {written} time(s)")

    async def leave(self, agents: Agents) -> Session | None:
        if self.report.device_switch:
            await switch_device(self, agents)
        self.note("room", f"participant_disconnected {self.report.identity!r} (CLIENT_INITIATED)")
        agents.leave(self.report.identity)
        await agents.settle()
        await agents.close()
        return await self.snapshot("after leaving")


async def simulate_reconnect(
    store: SessionStore,
    clock: VirtualClock,
    *,
    identity: str,
    gap: float,
    times: int = 1,
    turns: int = 2,
    greetings: GreetingTemplates = DEFAULT_GREETINGS,
    agents: int = 1,
    device_switch: bool = False,
) -> SimulationReport:
    """Run the simulation against ``store`` (which must use ``clock``) and return its report."""
    if gap < 0 or times < 1 or turns < 1 or agents < 1:
        raise InvalidInputError("gap must be >= 0, times, turns and agents >= 1")
    report = SimulationReport(
        identity=identity, gap=gap, times=times, turns=turns, agents=agents, device_switch=device_switch
    )
    sim = _Simulation(store, clock, report, greetings)
    before = await sim.snapshot("before the first arrival")
    room, decision = await sim.arrive()
    known = decision is not None and decision.returning
    label = _first_arrival_label(before, decision)
    sim.check(f"{label}: greeted once", room.spoken() == 1, f"{room.spoken()} greeting(s) spoken")
    expected = "returning (the store had a live session)" if before is not None else "new (the store had none)"
    sim.check(f"{label}: recognised as {expected.split(' ')[0]}", known == (before is not None),
              f"expected {expected}; returning={known}")
    lines = [USER_LINES[i % len(USER_LINES)] for i in range(turns)]
    await sim.converse(room, lines)
    sim.previous_lines = lines
    left = await sim.leave(room)
    recorded = 2 * turns + 1 + (SWITCH_TURNS if device_switch else 0)
    if outcome := long.summarised(left, recorded=recorded):
        sim.check(f"{label}: {outcome[0]}", *outcome[1:])
        sim.note("store", long.summary_line(left))
    for cycle in range(1, times + 1):
        decision = await _return_once(sim, cycle, decision)
    report.final_session = await store.get(identity)
    return report


def _first_arrival_label(before: Session | None, decision: GreetingDecision | None) -> str:
    """What this run's first arrival was: a first visit, or a return left by an earlier run or agent."""
    if before is None:
        return "first visit"
    visit = decision.visit if decision is not None else before.reconnect_count + 2
    return f"arrival 1 (visit {visit}, continuing a session left by an earlier run)"


def _return_label(cycle: int, decision: GreetingDecision | None) -> str:
    """``return 2 (visit 5)``: this run's count of returns, and the visit number the agent spoke."""
    return f"return {cycle}" if decision is None else f"return {cycle} (visit {decision.visit})"


async def _return_once(
    sim: _Simulation, cycle: int, previous: GreetingDecision | None
) -> GreetingDecision | None:
    count_before = previous.visit - 1 if previous is not None else 0
    ttl = sim.store.ttl_policy.ttl_for(count_before)
    expect_return = previous is not None and sim.report.gap < ttl
    sim.clock.advance(sim.report.gap)
    sim.note("clock", f"{format_duration(sim.report.gap)} later")
    await sim.snapshot("after the gap")
    agents, decision = await sim.arrive()
    greetings_heard = agents.spoken()
    now = await sim.snapshot("after reconnecting")
    label = _return_label(cycle, decision)
    _judge_arrival(sim, cycle, label, expect_return, decision, greetings_heard, count_before, now, ttl)
    await sim.converse(agents, [FOLLOW_UP])
    _judge_memory(sim, label, expect_return, agents.main.llm)
    if expect_return and long.summary_words(now):  # the first visit was summarised: it must come back first
        name, ok, detail = long.summary_restored(agents.main.llm.calls[-1].messages())
        sim.check(f"{label}: {name}", ok, detail)
    sim.previous_lines = [*sim.previous_lines, FOLLOW_UP] if expect_return else [FOLLOW_UP]
    await sim.leave(agents)
    return decision


def _judge_arrival(
    sim: _Simulation,
    cycle: int,
    label: str,
    expect_return: bool,
    decision: GreetingDecision | None,
    greetings_heard: int,
    count_before: int,
    now: Session | None,
    ttl_seconds: float,
) -> None:
    returning = decision is not None and decision.returning
    ttl = format_duration(ttl_seconds)
    gap = format_duration(sim.report.gap)
    if expect_return:
        outcome = f"{label}: recognised after {gap} (TTL {ttl})"
        sim.check(f"{label}: recognised", returning, f"gap {gap} < TTL {ttl}; returning={returning}")
    else:
        outcome = f"{label}: new session after {gap} (expired: TTL {ttl}), as expected"
        sim.check(f"{label}: expired session starts anew", not returning, f"gap {gap} >= TTL {ttl}")
    sim.report.outcomes.append(outcome)
    sim.check(f"{label}: greeted once", greetings_heard == 1, f"{greetings_heard} greeting(s) spoken")
    count_now = now.reconnect_count if now is not None else None
    want = count_before + 1 if expect_return else 0
    sim.check(f"{label}: reconnect count", count_now == want, f"reconnect_count {count_before} -> {count_now}")
    spoken, stored = (None if decision is None else decision.visit), (None if now is None else now.visit)
    sim.check(f"{label}: visit number spoken", spoken == stored, f"spoke visit {spoken}; the store's visit {stored}")
    failures = sum(1 for d in sim.report.decisions if not d.store_ok)
    sim.check(f"{label}: store answered", failures == 0, f"{failures} arrival(s) without the store")


def _judge_memory(sim: _Simulation, label: str, expect_return: bool, model: ScriptedLLM) -> None:
    """The earlier conversation reached the LLM (or, after expiry, none did). The count in the check and
    in the ``llm`` timeline line is the same number: every user turn the LLM received marked as restored,
    including those from runs before this one."""
    received = model.calls[-1].messages() if model.calls else []
    restored = [m.text_content for m in received if m.role == "user" and m.extra.get(RESTORED_MARK)]
    if expect_return:
        ok = sim.previous_lines[-1] in restored  # the newest earlier line is always within the restore window
        detail = f"{len(restored)} restored user turn(s) received, this run's last line among them"
        sim.check(f"{label}: earlier turns reached the LLM", ok, detail)
    else:
        sim.check(f"{label}: no stale history", not restored, f"{len(restored)} restored user turn(s)")
    sim.note(
        "llm", f"received {len(received)} messages, {len(restored)} restored user turn(s) from earlier visits"
    )


def _speaker(job: Job, agents: Agents) -> str:
    """``agent``, or ``agent 2`` when several agents share the room."""
    return "agent" if len(agents.jobs) == 1 else f"agent {agents.jobs.index(job) + 1}"


def _describe(session: Session | None, now: float, turns: int) -> str:
    if session is None:
        return "no live session (absent or expired)"
    words = long.summary_words(session)
    summarised = f" and a summary of {words} words" if words else ""
    if session.connected:
        count = len(session.connections)
        state = "connected" if count <= 1 else f"connected ({count} connections)"
    else:
        state = f"disconnected, expires in {format_duration(session.deadline - now)}"
    return (
        f"visit {session.reconnect_count + 1} (reconnect_count {session.reconnect_count}), {state}, "
        f"TTL {format_duration(session.ttl)}, {turns} turns{summarised}"
    )


__all__ = ["Check", "SimulationReport", "TimelineEvent", "simulate_reconnect"]
