"""Several worker processes on one port (WEB_CONCURRENCY > 1), under uvicorn's supervisor.

The parent migrates the database and runs the first-start bootstrap once, then marks its environment
(PREPARED_ENV) before the workers start: a worker inherits the mark and its lifespan skips both
(`open_database` migrates and `bootstrap` runs only where the mark is absent, so one process behaves
as before). Each worker is built by `create_worker_app`, which reads the settings from the environment
as `python -m server` does, and is an instance of its own: it keeps its own in-process cache, kept
coherent with the others' by the invalidation channel.

uvicorn's supervisor keeps its graceful shutdown (SIGINT/SIGTERM: each worker finishes its requests
and its lifespan), and starts a replacement for a worker that died; `Supervisor` also reports the dead
worker and its exit code as an error, whatever LOG_LEVEL, since uvicorn logs it at info.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

#: Set by the parent once it has migrated and bootstrapped: "done", or "repaired" when the bootstrap
#: repaired what cached sessions carry (each worker then clears its cache, as one process would).
PREPARED_ENV = "SESSION_SERVICE_PREPARED_BY_PARENT"
#: the app factory uvicorn's workers import
WORKER_APP = "server.workers:create_worker_app"

logger = logging.getLogger(__name__)


def mark_prepared(repaired: bool) -> None:
    """Called by the parent before its workers start (they inherit its environment)."""
    os.environ[PREPARED_ENV] = "repaired" if repaired else "done"


def prepared_by_parent() -> bool:
    """Whether this process is a worker whose parent already migrated the database and bootstrapped."""
    return PREPARED_ENV in os.environ


def repaired_by_parent() -> bool:
    return os.environ.get(PREPARED_ENV) == "repaired"


def create_worker_app() -> Starlette:
    """The app factory of a worker (`uvicorn.Config(WORKER_APP, factory=True)`)."""
    from server.app import create_app
    from server.cli import configure_logging
    from server.env_file import environment
    from server.http_protocol import limit_worker_protocol
    from server.memory import freeze_startup_objects, limit_arenas
    from server.services import passwords
    from server.settings import Settings

    limit_arenas()  # as `python -m server` does first (server/__main__.py): a worker is a new interpreter
    settings = Settings.from_env(environment(os.environ, Path.cwd()))  # the parent checked them
    configure_logging(settings, serving=True)
    passwords.configure(settings)
    limit_worker_protocol(settings.max_header_bytes)
    app = create_app(settings)
    freeze_startup_objects()
    return app


class Supervisor(Multiprocess):
    """uvicorn's supervisor, reporting each worker that exits while the server runs."""

    #: a worker failed during its start, so the parent stopped (the command then exits non-zero)
    failed = False

    def keep_subprocess_alive(self) -> None:
        if not self.should_exit.is_set():
            for process in self.processes:
                code = process.exitcode
                if code is None:
                    continue
                if code == STARTUP_FAILURE:
                    self.failed = True
                    logger.error("worker [%s] failed to start: stopping the server", process.pid)
                else:
                    logger.error("worker [%s] exited with code %s: starting another", process.pid, code)
                _forget_worker(process.pid)
        super().keep_subprocess_alive()


def _forget_worker(pid: int | None) -> None:
    from server.metrics import forget_worker

    if pid is not None:
        forget_worker(pid)
