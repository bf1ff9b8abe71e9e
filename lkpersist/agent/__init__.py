"""The agent side of lkpersist: with :mod:`lkpersist.sim`, the only code that imports livekit-agents.

- :class:`SessionPersistence` attaches a store to a room and an ``AgentSession``; it is one store
  connection of the sessions it serves (:mod:`lkpersist.agent.presence`: visits, device switches).
- :class:`GreetingTemplates` holds the greeting texts (en/es/fr/de built in); who speaks the greeting
  is :mod:`lkpersist.agent.greeter`.
- :class:`Summaries` says when long conversations are summarised (:mod:`lkpersist.agent.summaries`);
  ``session.userdata`` is kept by :mod:`lkpersist.agent.userdata`.
- :mod:`lkpersist.agent.worker` is the bundled agent that ``lkpersist run`` launches;
  :mod:`lkpersist.agent.config` its configuration (importable without livekit, for the CLI).

Names are loaded on first access, so ``lkpersist.agent.config`` stays livekit-free; without livekit,
that access raises MissingDependencyError naming the extra to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lkpersist.agent.controller import SessionPersistence
    from lkpersist.agent.greeter import GreetingDecision
    from lkpersist.agent.greetings import DEFAULT_GREETINGS, GreetingTemplates
    from lkpersist.agent.summaries import Summaries

_EXPORTS = {
    "DEFAULT_GREETINGS": "lkpersist.agent.greetings",
    "GreetingDecision": "lkpersist.agent.greeter",
    "GreetingTemplates": "lkpersist.agent.greetings",
    "SessionPersistence": "lkpersist.agent.controller",
    "Summaries": "lkpersist.agent.summaries",
}

__all__ = ["DEFAULT_GREETINGS", "GreetingDecision", "GreetingTemplates", "SessionPersistence", "Summaries"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lkpersist.agent' has no attribute {name!r}")
    from lkpersist.optional import import_agent_side

    return getattr(import_agent_side(module, name), name)
