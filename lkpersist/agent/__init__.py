"""The agent side of lkpersist (imports livekit-agents; nothing outside this package and the simulation does).

- :class:`SessionPersistence` attaches a store to a room and an ``AgentSession``.
- :class:`GreetingTemplates` holds the greeting texts (en/es/fr/de built in).
- :class:`ScriptedLLM` is a deterministic, offline LLM for simulations and tests.
- :mod:`lkpersist.agent.worker` is the bundled agent that ``lkpersist run`` launches.
"""

from __future__ import annotations

from lkpersist.agent.controller import GreetingDecision, SessionPersistence
from lkpersist.agent.greetings import DEFAULT_GREETINGS, GreetingTemplates
from lkpersist.agent.scripted_llm import ScriptedLLM

__all__ = ["DEFAULT_GREETINGS", "GreetingDecision", "GreetingTemplates", "ScriptedLLM", "SessionPersistence"]
