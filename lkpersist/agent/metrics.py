"""Agent-side Prometheus metrics, on the endpoint livekit-agents' worker already serves.

livekit's worker serves ``/metrics`` itself (``AgentServer(prometheus_port=…)``) and, with
``PROMETHEUS_MULTIPROC_DIR`` set (``prometheus_multiproc_dir=…``, or ``lkpersist run --prometheus-port``),
collects what its job processes write there: so these metrics are plain ``prometheus_client`` objects in
the default registry, created in the job process, and work in multiprocess mode with no code of ours on the
serving side. The gauge is ``livemax`` (degraded when any live job is).

Zero cost when Prometheus is not used: unless ``PROMETHEUS_MULTIPROC_DIR`` or ``LKPERSIST_METRICS=1`` is set
the controller gets :data:`NO_METRICS`, whose methods do nothing, and ``prometheus_client`` is never imported
from here.

==========================================================  ==============================================
``lkpersist_connections_total``                             participants that arrived (store answered)
``lkpersist_returns_total``                                 of those, returning ones
``lkpersist_greetings_total{mode,outcome}``                 mode template|llm|custom; outcome greet (this
                                                            agent greets), skip (already greeted), degraded
                                                            (store failed: greeted as new)
``lkpersist_greeting_decision_seconds``                     histogram: join to greeting decision
``lkpersist_store_operation_seconds{backend,operation}``    histogram: each store call the agent made
``lkpersist_store_failures_total{operation}``               store calls that failed or timed out
``lkpersist_store_degraded``                                gauge: 1 while the fallback serves from memory
``lkpersist_turns_recorded_total``                          conversation turns stored
``lkpersist_session_duration_seconds``                      histogram: one visit, join to leave
==========================================================  ==============================================
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from lkpersist.logsafe import get_logger
from lkpersist.stores.base import SessionStore

if TYPE_CHECKING:
    from lkpersist.agent.greeter import GreetingDecision

ENV_METRICS: Final = "LKPERSIST_METRICS"
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS: Final = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
STORE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AgentMetrics:
    """What the controller reports; this base class records nothing (Prometheus is not in use)."""

    def connected(self, returning: bool) -> None:
        """A participant arrived and the store answered."""

    def decided(self, decision: GreetingDecision, mode: str | None) -> None:
        """A greeting decision was made (``mode`` the controller's greeting mode, None: the user's code)."""

    def store_call(self, backend: str, operation: str, seconds: float, ok: bool, degraded: bool) -> None:
        """A store call ended (``ok`` False: failed or timed out); ``degraded``: the fallback serves from memory."""

    def turn_recorded(self, stored: object) -> None:
        """``append_turn`` answered ``stored`` (True when the turn was new)."""

    def visit_ended(self, seconds: float) -> None:
        """A participant's visit ended after ``seconds``."""


NO_METRICS: Final = AgentMetrics()


class PrometheusMetrics(AgentMetrics):
    """The metrics of the module table, registered once per process in prometheus_client's default registry."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.connections = Counter("lkpersist_connections", "Participants that arrived (the store answered).")
        self.returns = Counter("lkpersist_returns", "Arrivals of returning participants.")
        self.greetings = Counter("lkpersist_greetings", "Greeting decisions, by greeting mode and outcome.",
                                 ["mode", "outcome"])
        self.decision = Histogram("lkpersist_greeting_decision_seconds",
                                  "Time from a participant's join to the greeting decision.", buckets=STORE_BUCKETS)
        self.store_seconds = Histogram("lkpersist_store_operation_seconds", "Store calls made by the agent.",
                                       ["backend", "operation"], buckets=STORE_BUCKETS)
        self.failures = Counter("lkpersist_store_failures", "Store calls that failed or timed out.", ["operation"])
        self.degraded = Gauge("lkpersist_store_degraded", "1 while the fallback serves from memory.",
                              multiprocess_mode="livemax")
        self.turns = Counter("lkpersist_turns_recorded", "Conversation turns stored.")
        self.duration = Histogram("lkpersist_session_duration_seconds", "One visit, from join to leave.",
                                  buckets=DURATION_BUCKETS)

    def connected(self, returning: bool) -> None:
        self.connections.inc()
        if returning:
            self.returns.inc()

    def decided(self, decision: GreetingDecision, mode: str | None) -> None:
        outcome = "degraded" if not decision.store_ok else "greet" if decision.greet else "skip"
        self.greetings.labels(mode or "custom", outcome).inc()
        self.decision.observe(decision.elapsed)

    def store_call(self, backend: str, operation: str, seconds: float, ok: bool, degraded: bool) -> None:
        self.store_seconds.labels(backend, operation).observe(seconds)
        if not ok:
            self.failures.labels(operation).inc()
        self.degraded.set(1 if degraded else 0)

    def turn_recorded(self, stored: object) -> None:
        if stored is True:
            self.turns.inc()

    def visit_ended(self, seconds: float) -> None:
        self.duration.observe(seconds)


COUNT_EVERY: Final = 60.0
"""Seconds between two counts of the store's live sessions for the DEBUG arrival line."""


class ArrivalLog:
    """The DEBUG line of each arrival: identity, returning or not, visit number, sessions live in the store.

    The live count comes from ``store.count()``, at most once per :data:`COUNT_EVERY` seconds (the line
    says how old it is) and only while DEBUG is on; the identity goes through the redacting logger and no
    conversation text is ever part of the line."""

    def __init__(self, count: Callable[[], Awaitable[object]], log: logging.Logger | None = None) -> None:
        self._count, self._log = count, log or get_logger("lkpersist.agent")
        self._live: int | None = None
        self._counted_at = -COUNT_EVERY

    async def arrived(self, decision: GreetingDecision) -> None:
        if not self._log.isEnabledFor(logging.DEBUG):
            return
        if time.monotonic() - self._counted_at >= COUNT_EVERY:
            self._counted_at = time.monotonic()
            live = await self._count()
            self._live = live if isinstance(live, int) else self._live
        known = "unknown" if self._live is None else f"{self._live} (counted {time.monotonic() - self._counted_at:.0f} s ago)"
        self._log.debug(
            "arrival of %r: %s, visit %d, sessions live in the store: %s",
            decision.identity, "returning" if decision.returning else "new", decision.visit, known,
        )


_lock = threading.Lock()
_prometheus: PrometheusMetrics | None = None


def agent_metrics(environ: dict[str, str] | None = None) -> AgentMetrics:
    """Prometheus metrics when the worker serves them (multiprocess dir) or ``LKPERSIST_METRICS=1``, else none."""
    global _prometheus
    env = os.environ if environ is None else environ
    wanted = bool(env.get(MULTIPROC_ENV)) or env.get(ENV_METRICS, "").strip().lower() in ("1", "true", "yes", "on")
    if not wanted:
        return NO_METRICS
    with _lock:
        if _prometheus is None:
            _prometheus = PrometheusMetrics()
        return _prometheus


def backend_of(store: SessionStore) -> str:
    """The ``backend`` label: the primary's scheme under a FallbackStore."""
    primary: Any = getattr(store, "primary", None)
    return primary.scheme if isinstance(primary, SessionStore) else store.scheme


def degraded_of(store: SessionStore) -> bool:
    return bool(getattr(store, "degraded", False))


__all__ = [
    "COUNT_EVERY",
    "ENV_METRICS",
    "NO_METRICS",
    "AgentMetrics",
    "ArrivalLog",
    "PrometheusMetrics",
    "agent_metrics",
    "backend_of",
    "degraded_of",
]
