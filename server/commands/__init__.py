"""The commands of `python -m server`: each module adds its own to the parser (see server/cli.py)."""

from __future__ import annotations

from server.commands import maintenance, serve, sessions, users
from server.commands.base import EXIT_BAD_USAGE, EXIT_FAILURE, EXIT_OK, Command, CommandError, one_line

#: In the order `--help` lists them.
MODULES = (serve, maintenance, users, sessions)

__all__ = ["EXIT_BAD_USAGE", "EXIT_FAILURE", "EXIT_OK", "MODULES", "Command", "CommandError", "one_line"]
