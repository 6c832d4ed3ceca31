"""`sessions list` and `sessions revoke`: a user's sessions, as an operator sees and ends them."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from models import Session
from server.commands.base import EXIT_OK, Subcommands, services_on_the_database
from server.commands.users import find_user
from server.settings import Settings

COLUMNS = ("id", "created", "last active", "expires", "type", "channel")


def register(commands: Subcommands) -> None:
    sessions = commands.add_parser(
        "sessions", help="list or end a user's sessions", description="List or end the sessions of a user."
    )
    actions = sessions.add_subparsers(dest="action", required=True, metavar="{list,revoke}", prog=sessions.prog)
    listing = actions.add_parser(
        "list",
        help="a table of the user's sessions",
        description="Print a table of the user's sessions, the most recently active first (times in UTC)."
        " Tokens are not shown: only their digests are stored.",
    )
    listing.add_argument("identifier", metavar="IDENTIFIER", help="the user's identifier")
    listing.set_defaults(run=list_sessions)
    revoke = actions.add_parser(
        "revoke",
        help="end all of the user's sessions",
        description="End all of the user's sessions, in the database and the session cache.",
    )
    revoke.add_argument("identifier", metavar="IDENTIFIER", help="the user's identifier")
    revoke.set_defaults(run=revoke_sessions)


def list_sessions(args: argparse.Namespace, settings: Settings) -> int:
    identifier, rows = asyncio.run(_rows(settings, args.identifier))
    if not rows:
        print(f"{identifier!r} has no sessions")
        return EXIT_OK
    print(format_table([COLUMNS, *rows]))
    print(f"{len(rows)} session{'' if len(rows) == 1 else 's'} of {identifier!r}, times in UTC")
    return EXIT_OK


def revoke_sessions(args: argparse.Namespace, settings: Settings) -> int:
    identifier, ended = asyncio.run(_revoke(settings, args.identifier))
    print(f"ended {ended} session{'' if ended == 1 else 's'} of {identifier!r}")
    return EXIT_OK


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _rows(settings: Settings, identifier: str) -> tuple[str, list[tuple[str, ...]]]:
    async with services_on_the_database(settings) as services:
        user = await find_user(services, identifier)
        sessions = await Session.filter(user_id=user.id).select_related("active_channel").order_by("-last_active_at")
        return user.identifier, [
            (
                str(session.id),
                _time(session.created_at),
                _time(session.last_active_at),
                _time(session.expires),
                session.type.value,
                session.active_channel.code if session.active_channel is not None else "(default)",
            )
            for session in sessions
        ]


async def _revoke(settings: Settings, identifier: str) -> tuple[str, int]:
    async with services_on_the_database(settings, changes_sessions=True) as services:
        user = await find_user(services, identifier)
        return user.identifier, await services.sessions.delete_sessions_by_user(user.id)
