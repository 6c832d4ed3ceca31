"""The system under soak: a private PostgreSQL and Redis, instance A on the host's loopback and
instance B in its own network namespace, and the faults that can be injected into them.

PostgreSQL and Redis listen on loopback (for A and the harness) and on the host ends of B's
links; B reaches PostgreSQL over the database link and Redis over the cache link.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests.faults import STARTUP_TIMEOUT, PrivatePostgres, PrivateRedis, ServerProcess
from tests.live_server import REPO_ROOT, wait_until_healthy
from tests.soak.network import Namespace

SUPERADMIN_PASSWORD = "soak-not-the-default"
CACHE_NAMESPACE = "soak"
RESTART_TIMEOUT = 60


class NamespacedServer(ServerProcess):
    """`python -m server` inside `namespace`, listening on B's end of the database link."""

    def __init__(self, workdir: Path, namespace: Namespace, **settings: str) -> None:
        super().__init__(workdir, **settings)
        self.namespace = namespace
        self.env["HOST"] = namespace.database.inner_address
        self.url = f"http://{namespace.database.inner_address}:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [*self.namespace.exec_prefix, sys.executable, "-m", "server"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until_healthy(self.process, self.url, self.log, STARTUP_TIMEOUT)


class Cluster:
    """Everything `start()` started is stopped by `close()`; the namespace belongs to the caller."""

    def __init__(self, workdir: Path, namespace: Namespace, **settings: str) -> None:
        """`settings`: more server settings for both instances (e.g. SESSION_CACHE_TIMEOUT_MS)."""
        self.workdir = workdir
        self.namespace = namespace
        for name in ("redis", "a", "b"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        self.redis = PrivateRedis(workdir / "redis")
        self.postgres = PrivatePostgres()
        common = dict(
            SESSION_CACHE_NAMESPACE=CACHE_NAMESPACE,
            SESSION_CLEAN_INTERVAL="off",
            TOKEN_METHOD="bearer",
            SUPERADMIN_PASSWORD=SUPERADMIN_PASSWORD,
            LOGIN_RATE_LIMIT="off",
            **settings,
        )
        self.a = ServerProcess(workdir / "a", DATABASE_URL=self.postgres.url, SESSION_CACHE=self.redis.url, **common)
        self.b = NamespacedServer(
            workdir / "b",
            namespace,
            DATABASE_URL=f"postgres://postgres@{namespace.database.host_address}:{self.postgres.port}/postgres",
            SESSION_CACHE=f"redis://{namespace.cache.host_address}:{self.redis.port}/0",
            **common,
        )
        self.pids: dict[str, int] = {}

    def start(self) -> None:
        self.start_redis()
        self.postgres.start()
        self._open_postgres_to_namespace()
        for name, server in (("A", self.a), ("B", self.b)):
            server.start()
            assert server.process is not None
            self.pids[name] = server.process.pid

    def servers(self) -> dict[str, ServerProcess]:
        return {"A": self.a, "B": self.b}

    # ------------------------------------------------------------------------------------- faults

    def pause_redis(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGSTOP)

    def resume_redis(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGCONT)

    def kill_redis(self) -> None:
        """SIGKILL: no shutdown, every connection reset; nothing was persisted."""
        process = self.redis.process
        assert process is not None
        process.kill()
        process.wait(timeout=RESTART_TIMEOUT)
        self.redis.process = None

    def start_redis(self) -> None:
        self.redis.start()
        with self.redis.client() as client:
            client.config_set("bind", f"127.0.0.1 {self.namespace.cache.host_address}")
            client.config_set("protected-mode", "no")

    def restart_postgres(self) -> None:
        """`pg_ctl restart -m fast`: sessions terminated, committed data kept, the same options."""
        done = self._pg_ctl("-m", "fast", "-w", "-t", str(RESTART_TIMEOUT), "restart")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed: {done.stderr or done.stdout}\n{self.postgres.log_text()}")

    def cut_b_from_redis(self) -> None:
        self.namespace.cut(self.namespace.cache)

    def reconnect_b_to_redis(self) -> None:
        self.namespace.restore(self.namespace.cache)

    # ----------------------------------------------------------------------------------- plumbing

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """pg_ctl as PrivatePostgres runs it; the server logs to its file (given our pipes, it would
        hold them open and the call would never return)."""
        pg = self.postgres
        log = str(pg.root / "server.log")
        return subprocess.run(
            [*pg.as_user, str(pg.bindir / "pg_ctl"), "-D", str(pg.data), "-l", log, *args],
            capture_output=True,
            text=True,
            timeout=RESTART_TIMEOUT + 10,
            cwd=pg.root,
            check=False,
        )

    def _open_postgres_to_namespace(self) -> None:
        """Trust B's link in pg_hba.conf and listen on its host end too (a restart with wider options,
        which later `pg_ctl restart`s keep, since they reuse the last options)."""
        pg, link = self.postgres, self.namespace.database
        with (pg.data / "pg_hba.conf").open("a") as rules:
            rules.write(f"host all all {link.inner_address}/32 trust\n")
        options = f"-p {pg.port} -k {pg.root} -c listen_addresses=127.0.0.1,{link.host_address} -c fsync=off"
        done = self._pg_ctl("-o", options, "-m", "fast", "-w", "-t", str(RESTART_TIMEOUT), "restart")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed: {done.stderr or done.stdout}\n{pg.log_text()}")

    def restarted(self) -> list[str]:
        """The instances whose process is no longer the one started at the beginning."""
        return [
            name
            for name, server in self.servers().items()
            if not server.alive() or server.process is None or server.process.pid != self.pids.get(name)
        ]

    def close(self) -> None:
        try:
            for server in (self.b, self.a):
                server.close()
        finally:
            try:
                if self.redis.process is not None:
                    self.resume_redis()  # a stopped process would ignore SIGTERM
            finally:
                try:
                    self.redis.close()
                finally:
                    self.postgres.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
