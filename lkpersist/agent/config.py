"""Configuration of the bundled worker (``lkpersist run``), and the checks made before it starts.

livekit-agents runs each job in a separate process that imports :mod:`lkpersist.agent.worker` afresh,
so the worker reads its configuration from the environment (``LKPERSIST_*``). ``lkpersist run`` turns
its options into those variables (:meth:`WorkerConfig.to_env`) before handing over to livekit's CLI.
This module imports nothing from livekit: the CLI uses it to fail fast with one clear line.

Models are LiveKit Inference model strings (``provider/model``, e.g. ``openai/gpt-4.1-mini``); they
authenticate with the LiveKit API key and secret (or ``LIVEKIT_INFERENCE_API_KEY``/``_SECRET``), so
no separate provider key is needed. ``--llm scripted`` uses the offline scripted model instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lkpersist.agent.greetings import DEFAULT_GREETINGS, GreetingTemplates
from lkpersist.agent.summaries import Summaries
from lkpersist.durations import parse_duration
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy
from lkpersist.stores import ENV_STORE, resolve_store_url

DEFAULT_INSTRUCTIONS = (
    "You are a friendly, concise voice assistant. Earlier conversation with this participant, when "
    "present, is history from their previous visit: use it to continue naturally."
)
DEFAULT_STT = "deepgram/nova-3"
DEFAULT_LLM = "openai/gpt-4.1-mini"
DEFAULT_TTS = "cartesia/sonic-2"
SCRIPTED = "scripted"

# field name -> environment variable; the one mapping both directions use
ENV: Mapping[str, str] = {
    "store_url": ENV_STORE,
    "stt": "LKPERSIST_STT",
    "llm": "LKPERSIST_LLM",
    "tts": "LKPERSIST_TTS",
    "instructions": "LKPERSIST_INSTRUCTIONS",
    "greetings_file": "LKPERSIST_GREETINGS",
    "agent_name": "LKPERSIST_AGENT_NAME",
    "ttl_first": "LKPERSIST_TTL_FIRST",
    "ttl_returning": "LKPERSIST_TTL_RETURNING",
    "ttl_frequent": "LKPERSIST_TTL_FREQUENT",
    "store_timeout": "LKPERSIST_STORE_TIMEOUT",
    "ready_timeout": "LKPERSIST_READY_TIMEOUT",
    "heartbeat_interval": "LKPERSIST_HEARTBEAT",
    "fallback": "LKPERSIST_FALLBACK",
    "greeting": "LKPERSIST_GREETING",
    "summaries": "LKPERSIST_SUMMARIES",
    "summary_cap": "LKPERSIST_SUMMARY_CAP",
    "summary_keep": "LKPERSIST_SUMMARY_KEEP",
    "summary_words": "LKPERSIST_SUMMARY_WORDS",
    "switch_line": "LKPERSIST_SWITCH_LINE",
}
_DURATIONS = (
    "ttl_first",
    "ttl_returning",
    "ttl_frequent",
    "store_timeout",
    "ready_timeout",
    "heartbeat_interval",
)

_FLAGS = ("fallback", "summaries")
_COUNTS = ("summary_cap", "summary_keep", "summary_words")
_SUMMARIES = Summaries()
GREETING_CHOICES = ("template", "llm", "off")
"""``--greeting``: lkpersist's templates, the agent's LLM in its own words, or no greeting from lkpersist."""

WORKER_MODES = ("dev", "start", "connect")
LIVEKIT_SERVER_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
_ARG_FOR_ENV = {"LIVEKIT_URL": "--url", "LIVEKIT_API_KEY": "--api-key", "LIVEKIT_API_SECRET": "--api-secret"}


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything the bundled worker can be told; durations in seconds."""

    store_url: str | None = None
    stt: str = DEFAULT_STT
    llm: str = DEFAULT_LLM
    tts: str = DEFAULT_TTS
    instructions: str = DEFAULT_INSTRUCTIONS
    greetings_file: str | None = None
    agent_name: str = ""
    ttl_first: float = DEFAULT_TTL_POLICY.first
    ttl_returning: float = DEFAULT_TTL_POLICY.returning
    ttl_frequent: float = DEFAULT_TTL_POLICY.frequent
    store_timeout: float = 0.5
    ready_timeout: float = 3.0
    heartbeat_interval: float = 30.0
    fallback: bool | None = None
    """Serve sessions from memory while the store is unreachable, merged back later; None: on for Redis."""
    greeting: str = "template"
    """Who speaks the greeting: ``template``, ``llm`` (the model, in its own words) or ``off``."""
    summaries: bool = True
    """Summarise the oldest turns with the agent's LLM once more than ``summary_cap`` are stored."""
    summary_cap: int = _SUMMARIES.cap
    summary_keep: int = _SUMMARIES.keep
    summary_words: int = _SUMMARIES.max_words
    switch_line: str | None = None
    """Said when the participant moves to another device within a visit; None or empty: nothing is said."""

    def __post_init__(self) -> None:
        self.ttl_policy()  # validates the TTLs
        self.summary_policy()  # and the summary numbers
        if self.greeting not in GREETING_CHOICES:
            choices = ", ".join(GREETING_CHOICES)
            raise InvalidInputError(f"greeting must be one of {choices}, not {self.greeting!r}")
        if min(self.store_timeout, self.ready_timeout, self.heartbeat_interval) <= 0:
            raise InvalidInputError("store timeout, ready timeout and heartbeat must be positive")
        if self.heartbeat_interval >= min(self.ttl_first, self.ttl_returning, self.ttl_frequent):
            raise InvalidInputError("the heartbeat interval must be shorter than every TTL")

    def uses_fallback(self) -> bool:
        """Whether jobs wrap the store in a FallbackStore: as configured, else for Redis URLs only."""
        if self.fallback is not None:
            return self.fallback
        return resolve_store_url(self.store_url).lower().startswith(("redis://", "rediss://", "redis+"))

    def ttl_policy(self) -> TTLPolicy:
        return TTLPolicy(first=self.ttl_first, returning=self.ttl_returning, frequent=self.ttl_frequent)

    def summary_policy(self) -> Summaries | None:
        """The summaries jobs run (None when off); they summarise with the job's own LLM."""
        policy = Summaries(cap=self.summary_cap, keep=self.summary_keep, max_words=self.summary_words)
        return policy if self.summaries else None

    def greetings(self) -> GreetingTemplates:
        return GreetingTemplates.from_file(self.greetings_file) if self.greetings_file else DEFAULT_GREETINGS

    def resolved_instructions(self) -> str:
        """``@path`` reads the instructions from a file; anything else is the text itself."""
        if not self.instructions.startswith("@"):
            return self.instructions
        path = Path(self.instructions[1:])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidInputError(f"cannot read instructions from {path}: {exc}") from exc

    def to_env(self) -> dict[str, str]:
        """The ``LKPERSIST_*`` variables that reproduce this configuration in a job process."""
        values = asdict(self)
        return {ENV[name]: str(value) for name, value in values.items() if value not in (None, "")}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        """Read the configuration from ``LKPERSIST_*`` variables; unset ones keep their defaults."""
        environ = os.environ if environ is None else environ
        given: dict[str, object] = {}
        for item in fields(cls):
            raw = environ.get(ENV[item.name])
            if raw is None or raw == "":
                continue
            given[item.name] = _parsed(item.name, raw)
        return cls(**given)  # type: ignore[arg-type]


def _parsed(name: str, raw: str) -> object:
    """One variable's value as its field holds it (the variable named in the error when it does not parse)."""
    if name in _DURATIONS:
        return parse_duration(raw)
    if name in _FLAGS:
        return _flag(ENV[name], raw)
    if name in _COUNTS:
        try:
            return int(raw)
        except ValueError:
            raise InvalidInputError(f"{ENV[name]}={raw!r}: expected a whole number") from None
    return raw


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise InvalidInputError(f"{name}={raw!r}: expected true or false")
    return value in ("1", "true", "yes", "on")


def missing_environment(
    config: WorkerConfig, mode: str | None, args: Sequence[str], environ: Mapping[str, str]
) -> list[str]:
    """The variables ``mode`` needs that are neither set nor given as livekit options in ``args``."""
    needed: list[str] = []
    if mode in WORKER_MODES:
        needed += [name for name in LIVEKIT_SERVER_ENV if not _given(name, args, environ)]
    if mode in (*WORKER_MODES, "console") and _uses_inference(config):
        for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            inference_name = name.replace("LIVEKIT_", "LIVEKIT_INFERENCE_")
            if not environ.get(inference_name) and not _given(name, args, environ) and name not in needed:
                needed.append(name)
    return needed


def _given(name: str, args: Sequence[str], environ: Mapping[str, str]) -> bool:
    option = _ARG_FOR_ENV[name]
    return bool(environ.get(name)) or any(a == option or a.startswith(option + "=") for a in args)


def _uses_inference(config: WorkerConfig) -> bool:
    return any("/" in model for model in (config.stt, config.llm, config.tts) if model != SCRIPTED)


__all__ = ["ENV", "GREETING_CHOICES", "SCRIPTED", "WORKER_MODES", "WorkerConfig", "missing_environment"]
