"""Greeting texts: templates per language, for a new participant and for a returning one.

The agent speaks these with ``session.say`` (fixed text, no LLM round trip, so the greeting is fast and
predictable). Templates are ``str.format`` strings that may use ``{visit}`` (1 for a first visit, 2 for the
first return, ...) and ``{name}`` (the participant's display name, empty when unknown). They are checked
when loaded, so a typo fails at startup rather than at the moment a participant arrives.

Language tags are matched loosely: ``es-MX`` uses ``es``; a language without a template uses the default
language (English unless configured).
"""

from __future__ import annotations

import json
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lkpersist.exceptions import InvalidInputError

ALLOWED_FIELDS = frozenset({"visit", "name"})

DEFAULT_NEW: Mapping[str, str] = {
    "en": "Hello! I'm your assistant. How can I help you today?",
    "es": "¡Hola! Soy tu asistente. ¿En qué puedo ayudarte hoy?",
    "fr": "Bonjour ! Je suis votre assistant. Comment puis-je vous aider aujourd'hui ?",
    "de": "Hallo! Ich bin Ihr Assistent. Wie kann ich Ihnen heute helfen?",
}

DEFAULT_RETURNING: Mapping[str, str] = {
    "en": "Welcome back! This is visit number {visit}. Let's pick up where we left off.",
    "es": "¡Bienvenido de nuevo! Esta es tu visita número {visit}. Sigamos donde lo dejamos.",
    "fr": "Bon retour ! C'est votre visite numéro {visit}. Reprenons là où nous nous étions arrêtés.",
    "de": "Willkommen zurück! Das ist Ihr Besuch Nummer {visit}. Machen wir dort weiter, wo wir aufgehört haben.",
}


def normalize_language(tag: str | None) -> str | None:
    """``"es-MX"`` / ``"es_MX"`` / ``"ES"`` → ``"es"``; empty → None."""
    if not tag or not tag.strip():
        return None
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class GreetingTemplates:
    """The two greeting kinds, each a mapping of language → template.

    ``render`` never fails: an unknown language falls back to ``default_language``, and a missing
    default falls back to the built-in English text.
    """

    new: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_NEW))
    returning: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RETURNING))
    default_language: str = "en"

    def __post_init__(self) -> None:
        for kind, templates in (("new", self.new), ("returning", self.returning)):
            for language, template in templates.items():
                _check_template(f"{kind}.{language}", template)

    def render(self, *, returning: bool, language: str | None, visit: int, name: str = "") -> str:
        """The greeting for this visit, in ``language`` when a template exists for it."""
        templates = self.returning if returning else self.new
        builtin = DEFAULT_RETURNING if returning else DEFAULT_NEW
        chosen = (
            templates.get(normalize_language(language) or "")
            or templates.get(self.default_language)
            or builtin["en"]
        )
        return chosen.format(visit=visit, name=name).strip()

    def with_overrides(self, data: Mapping[str, Any]) -> GreetingTemplates:
        """A copy where ``data`` (``{"new": {...}, "returning": {...}, "default_language": "en"}``) wins."""
        unknown = set(data) - {"new", "returning", "default_language"}
        if unknown:
            raise InvalidInputError(f"unknown greeting keys: {', '.join(sorted(unknown))}")
        return GreetingTemplates(
            new={**self.new, **_language_map(data.get("new", {}), "new")},
            returning={**self.returning, **_language_map(data.get("returning", {}), "returning")},
            default_language=str(data.get("default_language", self.default_language)),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> GreetingTemplates:
        """Load overrides of the built-in templates from a ``.json`` or ``.toml`` file."""
        file = Path(path)
        try:
            raw = file.read_text(encoding="utf-8")
            data = tomllib.loads(raw) if file.suffix.lower() == ".toml" else json.loads(raw)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read greeting templates from {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidInputError(f"greeting templates in {file} must be an object")
        return cls().with_overrides(data)


def _language_map(value: Any, kind: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInputError(f"greeting templates {kind!r} must map language codes to text")
    return {normalize_language(str(k)) or str(k): v for k, v in value.items()}


def _check_template(label: str, template: str) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise InvalidInputError(f"greeting template {label} is malformed: {exc}") from exc
    unknown = fields - ALLOWED_FIELDS
    if unknown:
        raise InvalidInputError(
            f"greeting template {label} uses {', '.join(sorted(unknown))}; allowed: {{visit}}, {{name}}"
        )


DEFAULT_GREETINGS = GreetingTemplates()

__all__ = ["DEFAULT_GREETINGS", "GreetingTemplates", "normalize_language"]
