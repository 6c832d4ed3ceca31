"""Soak under faults: two instances on a private PostgreSQL and Redis under a mixed load, while Redis is
paused and killed, PostgreSQL restarted and instance B cut off from Redis, with invariants checked
after every step. Prints the figures as Markdown; exits 1 on any violation, 77 when it cannot run.

    .venv/bin/python -m tests.soak.run --minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.soak.client import REQUEST_TIMEOUT, Endpoint
from tests.soak.cluster import SUPERADMIN_PASSWORD, Cluster
from tests.soak.ledger import NOT_RECOVERED, Ledger
from tests.soak.network import Namespace, NamespaceUnavailable
from tests.soak.report import BASELINE, Report, StepResult, seconds
from tests.soak.steps import FAULTS, Fault, Recovery
from tests.soak.workload import Pace, Workload

#: Exit status when the soak cannot run here (automake's "skipped").
SKIPPED = 77


@dataclass(frozen=True)
class Options:
    #: faults are injected in whole cycles (one of each) until this much time has passed; at least one cycle
    minutes: float = 5.0
    #: seconds each pause, kill and cut lasts before it is lifted
    hold: float = 8.0
    #: seconds of load without faults after each step's checks
    steady: float = 15.0
    #: seconds after its acknowledgement from which a revoked token must be refused everywhere
    bound: float = 0.0
    recovery_timeout: float = 30.0
    users: int = 3
    carts: int = 2
    probers: int = 2
    seed: int = 0
    #: SESSION_CACHE_TIMEOUT_MS of both instances; None: the service's default
    cache_timeout_ms: int | None = None


class Soak:
    def __init__(self, options: Options, cluster: Cluster, report: Report, echo: bool) -> None:
        self.options = options
        self.cluster = cluster
        self.report = report
        self.echo = echo
        self.ledger = report.ledger
        self.endpoints = [Endpoint(name, server.url, report.traffic) for name, server in cluster.servers().items()]
        self.workload = Workload(self.endpoints, self.ledger, random.Random(options.seed), Pace())
        self.recovery = Recovery(cluster, self.endpoints)
        self._load: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            await self.workload.prepare(SUPERADMIN_PASSWORD, self.options.users)
            self.ledger.started = time.monotonic()
            self._load = asyncio.create_task(self.workload.run(self.options.carts, self.options.probers))
            try:
                await self._schedule()
            finally:
                self.workload.stop()
                await asyncio.wait_for(self._load, REQUEST_TIMEOUT * 2)
                self._load = None
            self.ledger.step = "final check"
            await self._check(everything=True)
            self.report.seconds = time.monotonic() - self.ledger.started
        finally:
            await self.recovery.close()
            for endpoint in self.endpoints:
                await endpoint.close()

    async def _schedule(self) -> None:
        await self._step(None)
        cycles = 0
        while cycles == 0 or time.monotonic() - self.ledger.started < self.options.minutes * 60:
            for fault in FAULTS:
                await self._step(fault)
            cycles += 1

    async def _step(self, fault: Fault | None) -> None:
        """Inject `fault`, lift it, wait for recovery, check, and let the load run on; the baseline
        (None) is load, then a check."""
        requests, violations = self.report.traffic.total, self.report.violations
        started = time.monotonic()
        held, recovered_in = 0.0, None
        self.ledger.step = BASELINE if fault is None else fault.name
        if fault is None:
            await asyncio.sleep(self.options.steady)
            await self._check()
        else:
            await self._inject(fault)
            held = time.monotonic() - started
            recovered_in, problem = await self.recovery.wait(self.options.recovery_timeout)
            self.ledger.checks["recoveries"] += 1
            if recovered_in is None:
                self.ledger.violation(NOT_RECOVERED, f"after {fault.name}: {problem}")
            await self._check()
            self.ledger.step = f"steady load after {fault.name}"
            await asyncio.sleep(self.options.steady)
        step = StepResult(
            fault=BASELINE if fault is None else fault.name,
            at=started - self.ledger.started,
            held=held,
            recovered_in=recovered_in,
            requests=self.report.traffic.total - requests,
            violations=self.report.violations - violations,
        )
        self.report.steps.append(step)
        recovery = "" if fault is None else f", recovered in {seconds(recovered_in)}"
        self._say(
            f"[{step.at:5.0f} s] {step.fault}: held {held:.1f} s{recovery}; "
            f"{step.requests} requests, {step.violations} violations"
        )

    async def _inject(self, fault: Fault) -> None:
        if fault.database_outage:
            self.ledger.outage_began()
        try:
            await asyncio.to_thread(fault.begin, self.cluster)
            if fault.end is not None:
                await asyncio.sleep(self.options.hold)
                await asyncio.to_thread(fault.end, self.cluster)
        finally:
            if fault.database_outage:
                self.ledger.outage_ended()

    async def _check(self, everything: bool = False) -> None:
        if self._load is not None and self._load.done():
            self._load.result()  # the load must run until the end: raise what stopped it
            raise RuntimeError("the load stopped before the end")
        await self.workload.sweep(everything)
        self.ledger.judge_server_errors(self.report.traffic)

    def _say(self, line: str) -> None:
        if self.echo:
            print(line, file=sys.stderr, flush=True)


def soak(options: Options, workdir: Path, command: str, echo: bool = False) -> Report:
    """Run the soak in `workdir`; raises NamespaceUnavailable when B cannot have a namespace of its own."""
    report = Report(command=command, seed=options.seed, ledger=Ledger(bound=options.bound))
    settings = {} if options.cache_timeout_ms is None else {"SESSION_CACHE_TIMEOUT_MS": str(options.cache_timeout_ms)}
    with Namespace() as namespace, Cluster(workdir, namespace, **settings) as cluster:
        cluster.start()
        try:
            asyncio.run(Soak(options, cluster, report, echo).run())
        finally:
            report.tracebacks = {
                name: server.log_text().count("Traceback") for name, server in cluster.servers().items()
            }
    return report


def _parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.run", description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument(
        "--minutes", type=float, default=defaults.minutes, help="length of the run (whole fault cycles)"
    )
    parser.add_argument("--hold", type=float, default=defaults.hold, help="seconds each pause, kill and cut lasts")
    parser.add_argument("--steady", type=float, default=defaults.steady, help="seconds of plain load after each step")
    parser.add_argument("--bound", type=float, default=defaults.bound, help="revocation bound in seconds")
    parser.add_argument("--recovery-timeout", type=float, default=defaults.recovery_timeout)
    parser.add_argument("--users", type=int, default=defaults.users, help="users logging in and being revoked")
    parser.add_argument("--carts", type=int, default=defaults.carts, help="tasks filling guest carts")
    parser.add_argument("--probers", type=int, default=defaults.probers, help="tasks looking tokens up")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one)")
    parser.add_argument("--cache-timeout-ms", type=int, default=None, help="SESSION_CACHE_TIMEOUT_MS of both instances")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    return Options(
        minutes=args.minutes,
        hold=args.hold,
        steady=args.steady,
        bound=args.bound,
        recovery_timeout=args.recovery_timeout,
        users=args.users,
        carts=args.carts,
        probers=args.probers,
        seed=seed,
        cache_timeout_ms=args.cache_timeout_ms,
    )


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "tests.soak.run", *(sys.argv[1:] if argv is None else argv)])
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        report = soak(options, workdir, command, echo=True)
    except NamespaceUnavailable as error:
        print(f"skipped: network namespaces are unavailable: {error}", file=sys.stderr)
        return SKIPPED
    except pytest.skip.Exception as error:  # a helper of tests/faults.py found something missing
        print(f"skipped: {error.msg}", file=sys.stderr)
        return SKIPPED
    except BaseException:
        print(f"server logs kept in {workdir}", file=sys.stderr)
        raise
    print(report.markdown())
    if report.violations:
        print(f"\n{report.violation_examples()}\n\nserver logs kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
