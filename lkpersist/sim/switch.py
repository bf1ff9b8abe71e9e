"""``simulate reconnect --device-switch``: the participant moves from the laptop to the phone mid-visit.

LiveKit allows one connection per identity in a room: when the phone joins, the laptop is kicked with
``DUPLICATE_IDENTITY``, and the same identity joins again. For lkpersist that is no departure and no
return: the store keeps the visit open for the new device (``switch_grace``), so the visit number stays,
nobody says "welcome back" (the agents' ``switch_line`` is said instead, once), both devices are
recorded on the session, and the conversation goes on where it was.
"""

from __future__ import annotations

from typing import Protocol

from livekit import rtc

from lkpersist.agent.controller import GreetingDecision
from lkpersist.model.session import Session
from lkpersist.sim.agents import SWITCH_LINE, Agents
from lkpersist.stores.base import SessionStore

FIRST_DEVICE = "laptop"
SECOND_DEVICE = "phone"
SWITCH_USER_LINE = "I'm on my phone now. Are we still on?"
SWITCH_TURNS = 3
"""Turns a switch adds to the visit: the switch line, the user's line and the agent's reply."""


class Simulation(Protocol):
    """What a switch needs of the running simulation (:class:`lkpersist.sim.reconnect._Simulation`)."""

    store: SessionStore
    previous_lines: list[str]

    @property
    def identity(self) -> str: ...

    @property
    def decisions(self) -> list[GreetingDecision]: ...

    def note(self, actor: str, text: str, *, shown: bool = True) -> None: ...

    def check(self, name: str, ok: bool, detail: str) -> None: ...


async def switch_device(sim: Simulation, agents: Agents) -> None:
    """Kick the laptop (DUPLICATE_IDENTITY), join from the phone, talk on; check the visit went on."""
    identity = sim.identity
    before = await sim.store.get(identity)
    counts, decided = agents.counts(), len(sim.decisions)
    sim.note("room", f"participant_disconnected {identity!r} (DUPLICATE_IDENTITY: the same identity joined "
             f"from the {SECOND_DEVICE})")
    agents.leave(identity, rtc.DisconnectReason.DUPLICATE_IDENTITY)
    await agents.settle()
    sim.note("room", f"participant_connected {identity!r} from the {SECOND_DEVICE}")
    agents.join(identity, SECOND_DEVICE)
    await agents.settle()
    said = agents.said_since(counts)
    for text in said:
        sim.note("agent", f"says: {text}")
    after = await sim.store.get(identity)
    _judge_switch(sim, before, after, said, sim.decisions[decided:])
    await _talk_on(sim, agents)


def _judge_switch(
    sim: Simulation, before: Session | None, after: Session | None, said: list[str],
    decisions: list[GreetingDecision],
) -> None:
    label = f"device switch in visit {_visit(before)}"
    same = before is not None and after is not None and after.visit == before.visit
    sim.check(f"{label}: the visit goes on", same, f"visit {_visit(before)} -> {_visit(after)}")
    greeted = sum(d.greet for d in decisions)
    sim.check(f"{label}: no welcome back", said == [SWITCH_LINE] and greeted == 0,
              f"said {said!r}; {greeted} greeting(s) claimed")
    devices = sorted(d.device_id for d in after.devices) if after is not None else []
    sim.check(f"{label}: both devices recorded", {FIRST_DEVICE, SECOND_DEVICE} <= set(devices),
              f"devices {devices}")


async def _talk_on(sim: Simulation, agents: Agents) -> None:
    """The user speaks from the phone: the agent still has the visit's conversation in its context."""
    sim.note("user", SWITCH_USER_LINE)
    spoken = len(agents.main.said)
    await agents.main.session.run(user_input=SWITCH_USER_LINE)
    await agents.settle()
    for text in agents.main.said[spoken:]:
        sim.note("agent", f"says: {text}")
    received = [m.text_content for m in agents.main.llm.calls[-1].messages() if m.role == "user"]
    last = sim.previous_lines[-1]
    sim.check("device switch: the conversation goes on", last in received,
              f"the line before the switch ({last!r}) is in the context the LLM received")
    sim.previous_lines = [*sim.previous_lines, SWITCH_USER_LINE]


def _visit(session: Session | None) -> str:
    return "-" if session is None else str(session.visit)


__all__ = ["FIRST_DEVICE", "SECOND_DEVICE", "SWITCH_TURNS", "Simulation", "switch_device"]
