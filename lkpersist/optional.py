"""The optional agent side: import it by name, and say in one line what to install when it is missing.

The store, the models and the ``sessions`` and ``token`` commands need only the core dependencies. The
agent side (``SessionPersistence``, ``lkpersist run``, ``simulate reconnect``) and ``lkpersist serve``
need the ``agent`` extra (livekit-agents, livekit-api, and the aiohttp they bring). Without it, Python's
own error is a forty-line ``ModuleNotFoundError`` traceback; every entry point to the agent side goes
through :func:`import_agent_side` instead, which raises
:class:`~lkpersist.exceptions.MissingDependencyError` (an ImportError, CLI exit 4) naming the fix.
"""

from __future__ import annotations

import sys
from types import ModuleType

from lkpersist.exceptions import MissingDependencyError

AGENT_EXTRA_INSTALL = "pip install 'lkpersist[agent]'"
_AGENT_PACKAGES = ("livekit", "aiohttp")
"""aiohttp comes with livekit-agents; ``lkpersist serve`` needs it."""


def missing_agent_extra(what: str, missing: str | None = None) -> MissingDependencyError:
    """The error for ``what`` (a class, a command) used without the agent extra installed."""
    return MissingDependencyError(
        f"{what} needs the agent extra (livekit-agents, livekit-api), which is not installed: {AGENT_EXTRA_INSTALL}",
        name=missing,
    )


def is_agent_dependency(exc: ImportError) -> bool:
    """Whether ``exc`` is about a package that the agent extra installs."""
    return (exc.name or "").split(".")[0] in _AGENT_PACKAGES


def import_agent_side(module: str, what: str) -> ModuleType:
    """Import an lkpersist module that needs livekit; MissingDependencyError when livekit is not installed.

    Any other import failure is raised as it is: only a missing extra gets the one-line treatment.
    """
    try:
        __import__(module)  # not importlib.import_module: ``python -X importtime`` does not report those
    except ModuleNotFoundError as exc:
        if not is_agent_dependency(exc):
            raise
        raise missing_agent_extra(what, exc.name) from None
    return sys.modules[module]


__all__ = ["AGENT_EXTRA_INSTALL", "import_agent_side", "is_agent_dependency", "missing_agent_extra"]
