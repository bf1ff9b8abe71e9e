"""The README's own-agent snippet: its added lines, read from the README, run on the real livekit classes.

The quickstart's ``session.start(room=ctx.room, ...)`` needs a connected room (none exists here), so the
session starts without one, as in the other agent tests; the room events go through a real ``rtc.Room``.
Everything the README adds after ``start`` runs as written, in a real (worker-less) JobContext, and the
job's shutdown callbacks are then run as livekit's job process runs them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, ConversationItemAddedEvent, llm
from livekit.agents.testing import fake_job_context

from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.exceptions import StoreError
from lkpersist.sim.roomsim import RoomEvents
from lkpersist.sim.scripted_llm import ScriptedLLM

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    """The ``diff`` block of the README's "Using it in your own agent" section."""
    section = README.read_text(encoding="utf-8").split("## Using it in your own agent", 1)[1]
    match = re.search(r"```diff\n(.*?)```", section, re.DOTALL)
    assert match, "the own-agent section has no diff block"
    return match.group(1)


def _added() -> list[str]:
    return [line[1:] for line in _snippet().splitlines() if line.startswith("+")]


def test_the_readme_counts_the_lines_it_adds_and_removes_the_quickstart_greeting() -> None:
    added = _added()
    removed = [line[1:].strip() for line in _snippet().splitlines() if line.startswith("-")]
    section = README.read_text(encoding="utf-8").split("## Using it in your own agent", 1)[1]
    assert f"**{len(added)} added lines**" in section
    assert len(added) <= 5
    assert "await session.generate_reply(" in removed  # the quickstart's own greeting: two per visit otherwise
    assert [line.strip() for line in added if "RoomOptions" not in line][1] == "close_on_disconnect=False,"


class _Job:
    """The quickstart's job, minus the room connection: a real AgentSession on the scripted LLM."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.events = RoomEvents(self.room)
        self.session: AgentSession[Any] = AgentSession(llm=ScriptedLLM(), vad=None, turn_handling={"turn_detection": None})
        self.said: list[str] = []
        self.session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage) and event.item.role == "assistant":
            self.said.append(event.item.text_content or "")

    async def run(self, identity: str, *, user_says: str | None = None) -> Any:
        """One visit: start, run the README's lines, the participant joins (and talks), leaves, shutdown."""
        with fake_job_context(room=self.room) as ctx:
            await self.session.start(Agent(instructions="You are a helpful voice AI assistant."))
            # one statement a line, at module or function level: run them at one level
            lines = [line.strip() for line in _added() if "close_on_disconnect" not in line]  # needs the room
            namespace: dict[str, Any] = {"session": self.session, "ctx": ctx}
            exec("\n".join(lines), namespace)  # noqa: S102 - the README's own lines
            persistence = namespace["persistence"]
            self.events.join(identity)
            self.events.activate(identity)
            await persistence.wait_idle()
            if user_says is not None:
                await self.session.run(user_input=user_says)
                await persistence.wait_idle()
            self.events.leave(identity)
            await persistence.wait_idle()
            await self.session.aclose()
            for callback in ctx._shutdown_callbacks:  # what livekit's job process does at shutdown
                await callback("job_shutdown")
        return persistence


async def test_the_snippet_greets_once_and_welcomes_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LKPERSIST_STORE", f"sqlite:///{tmp_path / 'sessions.db'}")
    first = _Job()
    persistence = await first.run("alice", user_says="I need a table for two.")
    assert first.said[0] == DEFAULT_NEW["en"]
    assert first.said.count(DEFAULT_NEW["en"]) == 1
    with pytest.raises(StoreError, match="closed"):  # aclose closed the store SessionPersistence() opened
        await persistence.store.get("alice")

    second = _Job()  # a new job: all it knows comes from the store
    await second.run("alice")
    assert second.said == [DEFAULT_RETURNING["en"].format(visit=2)]
