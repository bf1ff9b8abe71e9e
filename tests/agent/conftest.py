"""An agent job in-process: real AgentSession (scripted LLM, text only), real rtc.Room fed with events.

Nothing of lkpersist is mocked: the controller under test is the real one, attached to the real
livekit classes. Only the LLM is scripted (the package ships it) and there is no LiveKit server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, ConversationItemAddedEvent, llm

from lkpersist.agent import GreetingDecision, SessionPersistence
from lkpersist.sim.roomsim import RoomEvents
from lkpersist.sim.scripted_llm import ScriptedLLM
from lkpersist.stores.base import SessionStore

INSTRUCTIONS = "You are a test agent."


class Job:
    """One agent job: what it said, what its LLM received, and its room."""

    def __init__(
        self,
        store: SessionStore,
        *,
        llm: ScriptedLLM | None = None,
        initial_userdata: Any = None,
        **options: Any,
    ) -> None:
        self.llm = llm or ScriptedLLM()
        self.session: AgentSession[Any] = AgentSession(
            llm=self.llm, vad=None, turn_handling={"turn_detection": None}, userdata=initial_userdata
        )
        self.room = rtc.Room()
        self.events = RoomEvents(self.room)
        self.decisions: list[GreetingDecision] = []
        options.setdefault("ready_timeout", 2.0)
        also = options.pop("on_decision", None)  # a test's own callback runs after the job's record

        def on_decision(decision: GreetingDecision) -> None:
            self.decisions.append(decision)
            if also is not None:
                also(decision)

        self.persistence = SessionPersistence(store, on_decision=on_decision, **options)
        self.said: list[str] = []
        self.items: list[llm.ChatMessage] = []
        self.session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage):
            self.items.append(event.item)
            if event.item.role == "assistant":
                self.said.append(event.item.text_content or "")

    async def start(self) -> Job:
        await self.session.start(Agent(instructions=INSTRUCTIONS))
        self.persistence.attach(self.session, self.room)
        return self

    async def arrive(self, identity: str, **participant: Any) -> None:
        """Join, become active, and wait until the greeting (if any) has been spoken."""
        self.events.join(identity, **participant)
        self.events.activate(identity)
        await self.persistence.wait_idle()

    async def leave(
        self, identity: str, reason: rtc.DisconnectReason.ValueType = rtc.DisconnectReason.CLIENT_INITIATED
    ) -> None:
        self.events.leave(identity, reason)
        await self.persistence.wait_idle()

    async def say_user(self, text: str) -> str:
        """The user says ``text``; returns the agent's reply."""
        result: Any = await self.session.run(user_input=text)
        reply = result.expect.next_event().is_message(role="assistant").event().item
        await self.persistence.wait_idle()
        return reply.text_content or ""

    async def close(self) -> None:
        await self.session.aclose()
        await self.persistence.aclose()


JobFactory = Callable[..., Awaitable[Job]]


@pytest.fixture
async def make_job() -> AsyncIterator[JobFactory]:
    """``await make_job(store, llm=..., initial_userdata=..., **SessionPersistence options)``: a started
    job, closed after the test (``llm``: the ScriptedLLM to use; ``initial_userdata``: the AgentSession's
    userdata at start)."""
    jobs: list[Job] = []

    async def factory(store: SessionStore, **options: Any) -> Job:
        job = await Job(store, **options).start()
        jobs.append(job)
        return job

    yield factory
    for job in jobs:
        await job.close()
