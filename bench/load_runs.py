"""Runs of the load generator (bench/load.py, a process of its own), the idle wait before each, and its calibration."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from _common import BENCH_DIR, HOST, REPO_ROOT, BenchError, log
from load import cpu_seconds_of, system_cpu_ticks
from scenarios import LOOKUP_QUERY, graphql_body
from servers import free_port


class Generator:
    """One run of bench/load.py in its own process; killed if it overruns its time bound. The job is
    handed over when it is finished, or at once with `at_once` (for load that must run meanwhile)."""

    def __init__(self, job: dict[str, Any], at_once: bool = False) -> None:
        self.bound = float(job["warmup"]) + float(job["duration"]) + float(job["grace"]) + 30.0
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "load.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        self.payload = json.dumps(job).encode()
        if at_once:
            assert self.process.stdin is not None
            self.process.stdin.write(self.payload)
            self.process.stdin.close()
            self.process.stdin = None  # communicate() must not flush it again
            self.payload = b""

    def finish(self) -> dict[str, Any]:
        process = self.process
        try:
            out, err = process.communicate(self.payload or None, timeout=self.bound)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
            raise BenchError(f"load generator did not finish within {self.bound:.0f}s") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        if process.returncode != 0:
            raise BenchError(f"load generator failed ({process.returncode}): {err.decode(errors='replace')[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        return result


def run_generator(job: dict[str, Any]) -> dict[str, Any]:
    return Generator(job).finish()


def wait_idle(pid: int, quiet_wait: float, threshold: float = 0.10, machine_threshold: float = 0.35) -> dict[str, Any]:
    """Before a run: wait (at most 20 s) until the server uses < `threshold` of a core, so work left
    over by an earlier run (e.g. Argon2 threads of abandoned logins) does not leak into the next one;
    then wait (at most `quiet_wait` s) until the whole machine uses < `machine_threshold` of a core,
    so that a burst of someone else's work (a test suite on a shared machine) is not measured."""
    started = time.monotonic()
    while time.monotonic() - started < 20.0:
        before = cpu_seconds_of(pid)
        time.sleep(0.3)
        after = cpu_seconds_of(pid)
        if before is None or after is None or (after - before) / 0.3 < threshold:
            break
    server_idle_after = time.monotonic() - started
    quiet = True
    machine_started = time.monotonic()
    while True:
        before_ticks = system_cpu_ticks()
        time.sleep(0.5)
        after_ticks = system_cpu_ticks()
        if before_ticks is None or after_ticks is None or after_ticks[1] <= before_ticks[1]:
            break
        busy = (os.cpu_count() or 1) * (after_ticks[0] - before_ticks[0]) / (after_ticks[1] - before_ticks[1])
        if busy < machine_threshold:
            break
        if time.monotonic() - machine_started >= quiet_wait:
            quiet = False
            log(f"the machine stayed busy ({100 * busy:.0f}% of a core) for {quiet_wait:.0f}s: measuring anyway")
            break
    return {
        "server_idle_after_s": round(server_idle_after, 2),
        "machine_quiet": quiet,
        "waited_s": round(time.monotonic() - started, 2),
    }


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Drive a trivial canned-response server (load.py --canned-server) with the same generator and
    concurrency: the ceiling of the generator itself on this machine, to compare with the real runs."""
    port = free_port()
    duration = 2.0
    server = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "load.py"), "--canned-server", str(port), str(duration + 20)],
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        job = {
            "host": HOST,
            "port": port,
            "concurrency": args.concurrency,
            "warmup": 0.5,
            "duration": duration,
            "bodies": [graphql_body(LOOKUP_QUERY, {"t": "calibration"})],
            "expect": '"sessionFromToken":{"id"',
            "server_pid": server.pid,
            "grace": 5.0,
            "max_requests": args.max_requests,
        }
        return run_generator(job)
    finally:
        server.kill()
        server.wait(timeout=10)
