"""`clean-sessions` and `export-schema`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.commands.base import EXIT_OK, Subcommands, services_on_the_database
from server.settings import Settings


def register(commands: Subcommands) -> None:
    clean = commands.add_parser(
        "clean-sessions",
        help="delete expired and idle sessions until none are left",
        description="Delete expired sessions, and idle anonymous sessions without an order, batch by batch"
        " until none are left (what SESSION_CLEAN_INTERVAL schedules in each server).",
    )
    clean.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        metavar="N",
        help="sessions deleted per batch, 1 to 100000 [SESSION_CLEAN_BATCH_SIZE]",
    )
    clean.set_defaults(run=clean_sessions)
    export = commands.add_parser(
        "export-schema",
        help="print the GraphQL SDL",
        description="Print the GraphQL schema (SDL), or write it to a file. Reads no setting.",
    )
    export.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the SDL to this file instead")
    export.set_defaults(run=export_schema, reads_settings=False)


def clean_sessions(args: argparse.Namespace, settings: Settings) -> int:
    batch_size = settings.session_clean_batch_size if args.batch_size is None else args.batch_size
    print(f"removed {asyncio.run(_drain(settings, batch_size))} sessions")
    return EXIT_OK


def export_schema(args: argparse.Namespace, settings: Settings) -> int:
    from schema.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output is None:
        sys.stdout.write(sdl)
    else:
        args.output.write_text(sdl)
    return EXIT_OK


async def _drain(settings: Settings, batch_size: int) -> int:
    async with services_on_the_database(settings) as services:
        return await services.sessions.drain_expired_sessions(batch_size)


def _batch_size(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 < number <= 100_000:
        raise argparse.ArgumentTypeError("must be from 1 to 100000")
    return number
