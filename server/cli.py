"""`python -m server [COMMAND]`: the server and the operators' commands (server/commands/).

Exit codes: 0 done, 1 failed (one `error:` line), 2 bad usage or bad settings (one line each).
Never a traceback. Settings come from the environment over the `.env` file of the working directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from server.commands import EXIT_BAD_USAGE, EXIT_FAILURE, MODULES, Command, CommandError, one_line
from server.commands.serve import serve_api
from server.env_file import EnvFileError, environment
from server.services import passwords
from server.services.errors import ServiceError
from server.settings import Settings, SettingsError

DISTRIBUTION = "session-service"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = getattr(args, "run", serve_api)
    if not getattr(args, "reads_settings", True):
        return _run(run, args, Settings())
    try:
        settings = Settings.from_env(environment(os.environ, Path.cwd()))
    except (SettingsError, EnvFileError) as error:
        lines = error.lines() if isinstance(error, SettingsError) else error.problems
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_USAGE
    configure_logging(settings, serving=run is serve_api)
    passwords.configure(settings)
    return _run(run, args, settings)


def configure_logging(settings: Settings, serving: bool) -> None:
    """LOG_LEVEL, and the filters that keep secrets out of the logs (also each worker's, see server/workers.py)."""
    logging.basicConfig(level=settings.log_level_number, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _keep_secrets_out_of_logs(settings.log_level_number)
    if not serving:  # an operator's command prints its outcome; Tortoise's start and stop are noise
        logging.getLogger("tortoise").setLevel(max(settings.log_level_number, logging.WARNING))
        # and so are the session events it writes: they are stored (sessionEvents), not printed
        logging.getLogger("server.session_events").setLevel(max(settings.log_level_number, logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        usage="%(prog)s [-h] [--version] [COMMAND ...]",
        description="The session service: serves the GraphQL API (the default), and the operators' commands.",
        epilog="Settings are read from the environment, over a .env file in the working directory. Exit codes:"
        " 0 done, 1 failed, 2 bad usage or settings.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", prog=parser.prog)
    for module in MODULES:
        module.register(commands)
    return parser


def version() -> str:
    """The project's version: from the installed metadata, else from pyproject.toml."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        with PYPROJECT.open("rb") as file:
            found: str = tomllib.load(file)["project"]["version"]
            return found


def _run(run: Command, args: argparse.Namespace, settings: Settings) -> int:
    name = args.command or "serve"
    try:
        return run(args, settings)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
    except ServiceError as error:  # refused as the API refuses it (identifier or password rules, ...)
        print(f"error: {error.message}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"error: {name} interrupted", file=sys.stderr)
    except Exception as error:  # reported in one line, whatever failed
        print(f"error: {name} failed: {one_line(error)}", file=sys.stderr)
    return EXIT_FAILURE


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
