"""The root command's group: sub-commands imported only when used, global options everywhere.

Why: completion runs the whole program on every Tab press, and ``--help`` is what a new user types
first. Importing every sub-command (livekit's CLI for ``run``, cryptography for ``encrypt``...) cost
about half a second each time. Here a sub-command's module is imported only when the command line
names it; listings (``lkpersist --help``, completing ``lkpersist <Tab>``) use the one-line summary
registered with it instead of importing it.

Global options (``--store``, ``--key-file``) are declared once, on the root callback; the group adds a
copy of each to every sub-command it loads (and to their sub-commands), so ``lkpersist sessions ls
--store URL`` works as ``lkpersist --store URL sessions ls`` does (kubectl-style), with the same help
and environment variables. Given in both places, the one after the sub-command wins.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from lkpersist.cli._runner import CLIState, cli_state


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A sub-command by the module that defines it (``app = typer.Typer(...)`` there) and its summary."""

    module: str
    summary: str


GLOBAL_OPTIONS: Mapping[str, str] = {"store": "store_url", "key_file": "key_file"}
"""Root callback parameter → the CLIState field it sets."""


class LazyGroup(TyperGroup):
    """A TyperGroup whose sub-commands are :class:`LazyCommand` entries of ``lazy_commands``."""

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [*self.commands, *(name for name in self.lazy_commands if name not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        """The loaded command; for one not loaded yet, a stand-in carrying its summary (listings only:
        :meth:`resolve_command`, which runs and completes commands, always loads the real one)."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        lazy = self.lazy_commands.get(cmd_name)
        return None if lazy is None else TyperCommand(name=cmd_name, help=lazy.summary, short_help=lazy.summary)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        name = args[0] if args else ""
        if name in self.lazy_commands and name not in self.commands:
            self.commands[name] = self._load(name)
        elif name and name not in self.commands and not name.startswith("-") and not ctx.resilient_parsing:
            matches = get_close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def _load(self, name: str) -> Any:
        """The sub-command's click command, made to look and behave as part of this program."""
        path = self.lazy_commands[name].module
        __import__(path)  # not importlib.import_module: ``python -X importtime`` does not report those
        command = typer.main.get_command(sys.modules[path].app)
        command.name = name
        _adopt(command, [p for p in self.params if p.name in GLOBAL_OPTIONS], self.rich_markup_mode)
        return command


_OWN_OPTIONS_OF_A_PROGRAM = ("install_completion", "show_completion")
"""What Typer gives every app it builds alone; here only the root (the program) has them."""


def _adopt(command: Any, options: list[Any], markup_mode: Any) -> None:
    """For ``command`` and every command under it: the root's help style, no completion-install options
    of its own, and a copy of each global option (see the module doc)."""
    command.rich_markup_mode = markup_mode
    command.params = [p for p in command.params if p.name not in _OWN_OPTIONS_OF_A_PROGRAM]
    for option in options:
        local = copy.copy(option)
        local.expose_value = False  # the command functions do not take them: they read the CLIState
        local.callback = _remember
        command.params.append(local)
    for child in getattr(command, "commands", {}).values():
        _adopt(child, options, markup_mode)


def _remember(ctx: typer.Context, param: Any, value: Any) -> Any:
    """A global option given after the sub-command: it overrides the root's value (given or from env)."""
    source = ctx.get_parameter_source(param.name)
    if value is not None and source is not None and source.name == "COMMANDLINE":
        state: CLIState = cli_state(ctx)
        setattr(state, GLOBAL_OPTIONS[param.name], value)
    return value


__all__ = ["GLOBAL_OPTIONS", "LazyCommand", "LazyGroup"]
