"""The agents of one simulated arrival: N agent jobs serving one participant, sharing one store.

Each job is what a LiveKit worker runs: a fresh ``AgentSession`` on the package's scripted LLM and a
fresh :class:`~lkpersist.agent.SessionPersistence` (its own store connection), in a real ``rtc.Room``
fed with the participant's events (:mod:`lkpersist.sim.roomsim`). With ``--agents 2`` two such jobs sit
in the room, as when two agents serve one participant: the store's visit model must still count one
visit and one greeting per return. The user talks to the first job; the others listen.

The participant's events reach the jobs in an order that rotates from one arrival to the next, so
every job gets to be the first to arrive (and so the greeter) in some visit.
"""

from __future__ import annotations

from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, ConversationItemAddedEvent, llm

from lkpersist.agent.controller import GreetingDecision, SessionPersistence
from lkpersist.agent.greetings import GreetingTemplates
from lkpersist.agent.presence import DEVICE_ATTRIBUTE, DEVICE_LABEL_ATTRIBUTE, connection_id
from lkpersist.sim import long_conversation as long
from lkpersist.sim.roomsim import CLIENT_INITIATED, RoomEvents
from lkpersist.sim.scripted_llm import ScriptedLLM
from lkpersist.stores.base import SessionStore

INSTRUCTIONS = "You are a friendly restaurant booking assistant. Keep answers short."
SIMULATION_STORE_TIMEOUT = 5.0  # the simulation checks logic, not latency: give a cold SQLite file time
SWITCH_LINE = "You're now on your other device."
"""What the simulated agents say after a device switch (``SessionPersistence(switch_line=...)``)."""


class Job:
    """One agent job: an AgentSession on the scripted LLM, with persistence, in an unconnected room."""

    def __init__(
        self,
        store: SessionStore,
        greetings: GreetingTemplates,
        decisions: list[GreetingDecision],
        name: str,
    ) -> None:
        self.llm = ScriptedLLM()
        self.session: AgentSession[Any] = AgentSession(
            llm=self.llm, vad=None, turn_handling={"turn_detection": None}
        )
        self.room = rtc.Room()
        self.events = RoomEvents(self.room)
        self.persistence = SessionPersistence(
            store,
            greetings=greetings,
            store_timeout=SIMULATION_STORE_TIMEOUT,
            on_decision=decisions.append,
            summaries=long.SUMMARIES,
            switch_line=SWITCH_LINE,
            connection=connection_id(name),
        )
        self.said: list[str] = []
        self.session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if isinstance(item, llm.ChatMessage) and item.role == "assistant":
            self.said.append(item.text_content or "")

    async def start(self) -> None:
        await self.session.start(Agent(instructions=INSTRUCTIONS))
        self.persistence.attach(self.session, self.room)

    async def close(self) -> None:
        await self.session.aclose()
        await self.persistence.aclose()


class Agents:
    """The jobs of one arrival (``count`` of them) and what they said; ``main`` is the one talked to."""

    def __init__(
        self, store: SessionStore, greetings: GreetingTemplates, decisions: list[GreetingDecision],
        count: int, rotation: int,
    ) -> None:
        self.jobs = [Job(store, greetings, decisions, f"agent-{n + 1}") for n in range(count)]
        self.main = self.jobs[0]
        shift = rotation % count
        self._order = self.jobs[shift:] + self.jobs[:shift]

    async def start(self) -> None:
        for job in self.jobs:
            await job.start()

    def join(self, identity: str, device: str) -> None:
        """The participant joins every job's room (from ``device``) and becomes active."""
        attributes = {DEVICE_ATTRIBUTE: device, DEVICE_LABEL_ATTRIBUTE: f"simulated {device}"}
        for job in self._order:
            job.events.join(identity, attributes=attributes)
            job.events.activate(identity)

    def repeat_join(self, identity: str) -> None:
        for job in self._order:
            job.events.repeat_join(identity)

    def leave(self, identity: str, reason: rtc.DisconnectReason.ValueType = CLIENT_INITIATED) -> None:
        for job in self._order:
            job.events.leave(identity, reason)

    async def settle(self) -> None:
        for job in self.jobs:
            await job.persistence.wait_idle()

    def spoken(self) -> int:
        return sum(len(job.said) for job in self.jobs)

    def said_since(self, counts: list[int]) -> list[str]:
        """What the jobs said since :meth:`counts` was taken."""
        return [text for job, n in zip(self.jobs, counts, strict=True) for text in job.said[n:]]

    def counts(self) -> list[int]:
        return [len(job.said) for job in self.jobs]

    async def close(self) -> None:
        for job in self.jobs:
            await job.close()


__all__ = ["INSTRUCTIONS", "SIMULATION_STORE_TIMEOUT", "SWITCH_LINE", "Agents", "Job"]
