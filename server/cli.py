"""`python -m server [serve | migrate | clean-sessions | export-schema]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from server.settings import Settings, SettingsError

EXIT_BAD_SETTINGS = 2
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="The session service.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the GraphQL API (the default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    clean = commands.add_parser("clean-sessions", help="delete expired and idle sessions until none are left")
    clean.add_argument("--batch-size", type=_positive_int, default=1000)
    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.command == "export-schema":
        return _export_schema(args.output)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    logging.basicConfig(level=settings.log_level_number, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _keep_secrets_out_of_logs(settings.log_level_number)
    if args.command == "serve" or args.command is None:
        return _serve(settings)
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        else:
            print(f"removed {asyncio.run(_clean_sessions(settings, args.batch_size))} sessions")
    except Exception as error:  # reported in one line, whatever failed
        print(f"error: {args.command} failed: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


#: Loggers whose DEBUG records carry secrets: Tortoise logs every query with its parameters (the INSERT
#: of a user holds its argon2 hash) and its startup config (DATABASE_URL with its password), aiosqlite
#: logs each call with the same parameters. Even under LOG_LEVEL=debug they log from INFO up.
QUERY_LOGGERS = ("tortoise", "aiosqlite")


class _NoQueryString(logging.Filter):
    """uvicorn's access log (on under LOG_LEVEL=debug) prints the request target, and a GET query
    can carry a session token in its query string: the query string is logged as "?…"."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].partition("?")[0] + "?…", *args[3:])
        return True


def _keep_secrets_out_of_logs(level: int) -> None:
    for name in QUERY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    # A logger's filters survive uvicorn's dictConfig, which replaces only its handlers.
    logging.getLogger("uvicorn.access").addFilter(_NoQueryString())


def _one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 < number <= 100_000:
        raise argparse.ArgumentTypeError("must be from 1 to 100000")
    return number


def _serve(settings: Settings) -> int:
    import uvicorn

    from server.app import create_app
    from server.http_protocol import head_limited_protocol

    # Migrate before serving, so an unreachable database is one clear line rather than a traceback.
    try:
        asyncio.run(_migrate(settings))
    except Exception as error:
        print(f"error: cannot open the database named by DATABASE_URL: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=head_limited_protocol(settings.max_header_bytes),
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, or from its own FORWARDED_ALLOW_IPS.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips),
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        server_header=False,
    )
    return 0


async def _migrate(settings: Settings) -> None:
    from server.database import close_database, open_database

    await open_database(settings.database_url)
    await close_database()


async def _clean_sessions(settings: Settings, batch_size: int) -> int:
    """Remove the whole backlog of expired and idle sessions, batch by batch."""
    from server.cache import build_session_cache
    from server.database import close_database, open_database
    from server.services.cache_outages import CacheOutageBoard
    from server.services.session_cleanup import SessionCleaner

    await open_database(settings.database_url)
    # A board without a reader: if Redis cannot be reached from here, the outage is posted, so the
    # servers stop trusting copies of what this run deletes (the row goes stale once it exits).
    outages = CacheOutageBoard() if settings.session_cache.startswith("redis://") else None
    cache = build_session_cache(settings, settings.session_cache_namespace, outages=outages)
    try:
        return await SessionCleaner(cache, time.time).drain_expired_sessions(batch_size)
    finally:
        await cache.close()
        await close_database()


def _export_schema(output: Path | None) -> int:
    from schema.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)
    return 0
