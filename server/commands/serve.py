"""`serve` (the default command) and `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server.commands.base import EXIT_BAD_USAGE, EXIT_FAILURE, EXIT_OK, Subcommands, one_line
from server.metrics import MULTIPROCESS_ENV
from server.settings import Settings, SettingsError


def register(commands: Subcommands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the GraphQL API (the default command)",
        description="Apply the migrations, then serve the GraphQL API at http://HOST:PORT/graphql.",
    )
    serve.set_defaults(run=serve_api)
    migrate = commands.add_parser(
        "migrate", help="apply the database migrations and exit", description="Apply the database migrations and exit."
    )
    migrate.set_defaults(run=migrate_database)


def serve_api(args: argparse.Namespace, settings: Settings) -> int:
    from server.instance_lock import InstanceLockError, instance_lock, refused_workers

    refusal = refused_workers(settings)
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return EXIT_BAD_USAGE
    try:
        with instance_lock(settings):  # held until the server stops (see server/instance_lock.py)
            if settings.web_concurrency > 1:
                return _serve_workers(settings)
            return _serve_one(settings)
    except InstanceLockError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_USAGE


def _serve_one(settings: Settings) -> int:
    import uvicorn

    from server.app import create_app
    from server.http_protocol import head_limited_protocol
    from server.memory import freeze_startup_objects

    # Migrate before serving, so an unreachable database is one clear line rather than a traceback.
    try:
        asyncio.run(migrate(settings))
    except Exception as error:
        print(f"error: cannot open the database named by DATABASE_URL: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    with _metrics_listener(settings) as listening:
        if not listening:
            return EXIT_FAILURE
        app = create_app(settings)
        freeze_startup_objects()
        uvicorn.run(
            app,
            http=head_limited_protocol(settings.max_header_bytes),
            **_uvicorn_options(settings),
        )
    return EXIT_OK


def _serve_workers(settings: Settings) -> int:
    """WEB_CONCURRENCY worker processes on one port: migrations and bootstrap here, once, first."""
    import uvicorn

    from server.http_protocol import WORKER_PROTOCOL
    from server.workers import WORKER_APP, Supervisor, mark_prepared

    try:
        repaired = asyncio.run(prepare(settings))
    except SettingsError as error:  # the bootstrap's check of SUPERADMIN_IDENTIFIER
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_USAGE
    except Exception as error:
        print(f"error: cannot open the database named by DATABASE_URL: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    mark_prepared(repaired)
    with _multiprocess_metrics(settings), _metrics_listener(settings) as listening:
        if not listening:
            return EXIT_FAILURE
        options = _uvicorn_options(settings)
        workers = settings.web_concurrency
        config = uvicorn.Config(WORKER_APP, factory=True, workers=workers, http=WORKER_PROTOCOL, **options)
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        try:
            supervisor.run()
        except KeyboardInterrupt:
            pass
    return EXIT_FAILURE if supervisor.failed else EXIT_OK


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, or from its own FORWARDED_ALLOW_IPS.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
        "log_level": settings.log_level,
        "access_log": settings.log_level == "debug",
        "server_header": False,
    }


@contextmanager
def _multiprocess_metrics(settings: Settings) -> Iterator[None]:
    """prometheus-client's multiprocess mode for the workers: a fresh directory, named in the environment
    they inherit, removed at exit (see server/metrics.py)."""
    if not settings.metrics:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="session-service-metrics-") as directory:
        os.environ[MULTIPROCESS_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_ENV]


@contextmanager
def _metrics_listener(settings: Settings) -> Iterator[bool]:
    """METRICS_ADDRESS's listener, in this process (the parent, when there are workers); False when it
    could not listen (reported in one line)."""
    if not settings.metrics or settings.metrics_address is None:
        yield True
        return
    from server.metrics import start_metrics_listener

    host, port = settings.metrics_address
    try:
        server, thread = start_metrics_listener(host, port)
    except OSError as error:
        print(f"error: cannot listen on METRICS_ADDRESS={host}:{port}: {one_line(error)}", file=sys.stderr)
        yield False
        return
    try:
        yield True
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def migrate_database(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(migrate(settings))
    return EXIT_OK


async def migrate(settings: Settings) -> None:
    from server.database import close_database, open_database

    await open_database(settings.database_url)
    await close_database()


async def prepare(settings: Settings) -> bool:
    """Migrate and run the first-start bootstrap; whether the bootstrap repaired what sessions carry."""
    from server.bootstrap import bootstrap
    from server.database import close_database, open_database

    await open_database(settings.database_url)
    try:
        return await bootstrap(settings)
    finally:
        await close_database()
