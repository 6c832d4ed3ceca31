"""A lean HTTP/1.1 keep-alive load generator on raw asyncio streams.

Run as a separate process by bench/run.py (so the load never shares the server's event loop or
GIL). It reads its job as JSON on stdin, so credentials never show in `ps`:

    {"host": "127.0.0.1", "port": 8123, "path": "/graphql",
     "concurrency": 32, "warmup": 1.0, "duration": 5.0,
     "bodies": ["{\"query\": ...}", ...],      # JSON request bodies, cycled through
     "expect": "\"sessionFromToken\":{",        # must appear in every 200 response body
     "header_sets": [{"Authorization": "Bearer ..."}, ...],  # optional: extra headers, cycled with the bodies
     "server_pid": 1234,                        # optional: its CPU use is measured too
     "max_requests": 5000000, "grace": 10.0}

and prints one JSON object with the counts, latency percentiles and the CPU use of this
process and of the server over the measured window.

Requests completing inside the measured window are counted (their latency is from send to
the end of the response, even when sent during the warm-up). Every request, in the window or
not, counts as an error when the connection fails, the status is not 200, the body
carries a GraphQL "errors" member, or the body lacks `expect`. Every loop is bounded: workers
stop issuing requests at the end of the measured window or after `max_requests`, and whatever
is still in flight `grace` seconds later is cancelled (and counted as an error).

Only loopback addresses are accepted as targets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
import time
from collections import Counter
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class HttpError(Exception):
    pass


def ensure_loopback(host: str) -> None:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing to send load to {host!r}: only loopback addresses are allowed")


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects lazily after a close or a failure."""

    __slots__ = ("host", "port", "reader", "writer")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes, bytes]:
        """Send one pre-built request; returns (status, lower-cased head, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 "):
                raise HttpError(f"bad status line {head[:40]!r}")
            status = int(head[9:12])
            lower = head.lower()
            index = lower.find(b"\r\ncontent-length:")
            if index >= 0:
                end = lower.index(b"\r\n", index + 2)
                body = await reader.readexactly(int(lower[index + 17 : end]))
            elif b"\r\ntransfer-encoding: chunked" in lower:
                body = await self._read_chunked(reader)
            else:
                raise HttpError("response without a length")
            if b"\r\nconnection: close" in lower:
                self.close()
            return status, lower, body
        except BaseException:
            self.close()
            raise

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        for _ in range(100_000):
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raise HttpError("too many chunks")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def cpu_seconds_of(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (all its threads) and of its live child processes (the
    workers under WEB_CONCURRENCY), from /proc."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return own + sum(cpu_seconds_of(child) or 0.0 for child in _children(pid))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
            return [int(child) for child in children.read().split()]
    except (OSError, ValueError):
        return []


def system_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    try:
        with open("/proc/stat", "rb") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), int(fraction * len(ordered) + 0.999999)))
    return ordered[rank - 1]


async def run_load(job: dict[str, Any]) -> dict[str, Any]:
    host, port = job["host"], int(job["port"])
    ensure_loopback(host)
    concurrency = int(job.get("concurrency", 32))
    warmup = float(job.get("warmup", 1.0))
    duration = float(job["duration"])
    grace = float(job.get("grace", 10.0))
    max_requests = int(job.get("max_requests", 5_000_000))
    expect = job.get("expect", "").encode()
    path = job.get("path", "/graphql")
    headers = job.get("headers") or {}
    # "header_sets": extra headers per request (a bearer token each), cycled with the bodies.
    header_sets = job.get("header_sets") or [{}]
    bodies = job["bodies"]
    requests = [
        build_request(
            host, port, path, bodies[i % len(bodies)].encode(), {**headers, **header_sets[i % len(header_sets)]}
        )
        for i in range(max(len(bodies), len(header_sets)))
    ]
    if not requests or concurrency < 1 or duration <= 0:
        raise SystemExit("need at least one body, concurrency >= 1 and duration > 0")

    perf = time.perf_counter
    started = perf()
    measure_from = started + warmup
    measure_until = measure_from + duration
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[str] = []
    issued = 0
    warm_done = 0

    def record_error(kind: str, detail: str) -> None:
        errors[kind] += 1  # warm-up and overrun requests too: every failure counts
        if len(samples) < 5:
            samples.append(f"{kind}: {detail[:300]}")

    async def worker(index: int) -> None:
        nonlocal issued, warm_done
        connection = Connection(host, port)
        position = index * len(requests) // concurrency
        try:
            while issued < max_requests:
                begin = perf()
                if begin >= measure_until:
                    return
                issued += 1
                raw = requests[position]
                position = position + 1 if position + 1 < len(requests) else 0
                try:
                    status, _, body = await connection.request(raw)
                except (
                    OSError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    HttpError,
                    ValueError,
                ) as error:
                    record_error("connection", f"{type(error).__name__}: {error}")
                    await asyncio.sleep(0.05)
                    continue
                end = perf()
                counted = measure_from <= end <= measure_until
                if status != 200:
                    record_error(f"http_{status}", body.decode("utf-8", "replace"))
                elif b'"errors"' in body or expect not in body:
                    record_error("graphql", body.decode("utf-8", "replace"))
                elif counted:
                    latencies.append(end - begin)
                else:
                    warm_done += 1
        finally:
            connection.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(max(0.0, measure_from - perf()))
    cpu_self_0, server_cpu_0, wall_0 = time.process_time(), cpu_seconds_of(job.get("server_pid")), perf()
    system_0 = system_cpu_ticks()
    await asyncio.sleep(max(0.0, measure_until - perf()))
    cpu_self_1, server_cpu_1, wall_1 = time.process_time(), cpu_seconds_of(job.get("server_pid")), perf()
    system_1 = system_cpu_ticks()
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=2.0)
        errors["timeout"] += len(pending)
        samples.append(f"timeout: {len(pending)} requests still in flight {grace}s after the end")
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            errors["worker_crash"] += 1
            samples.append(f"worker_crash: {task.exception()!r}")

    window = wall_1 - wall_0
    latencies.sort()
    ms = 1000.0

    def pct(fraction: float) -> float | None:
        value = percentile(latencies, fraction)
        return None if value is None else round(value * ms, 3)

    server_cpu = None
    if server_cpu_0 is not None and server_cpu_1 is not None:
        server_cpu = round(100.0 * (server_cpu_1 - server_cpu_0) / window, 1)
    # Machine-wide CPU use over the window, in percent of ONE core (so 2 busy cores = 200%), and
    # what was left for other processes (PostgreSQL, Redis, anything else running on the machine).
    system_cpu = other_cpu = None
    if system_0 is not None and system_1 is not None and system_1[1] > system_0[1]:
        cores = os.cpu_count() or 1
        system_cpu = round(100.0 * cores * (system_1[0] - system_0[0]) / (system_1[1] - system_0[1]), 1)
        generator_cpu = 100.0 * (cpu_self_1 - cpu_self_0) / window
        other_cpu = round(max(0.0, system_cpu - generator_cpu - (server_cpu or 0.0)), 1)
    try:
        load_average = os.getloadavg()[0]
    except OSError:
        load_average = None
    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_samples": samples,
        "requests_per_second": round(len(latencies) / window, 1),
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": pct(1.0),
            "mean": round(sum(latencies) / len(latencies) * ms, 3) if latencies else None,
        },
        "window_seconds": round(window, 3),
        "warmup_requests": warm_done,
        "generator_cpu_percent": round(100.0 * (cpu_self_1 - cpu_self_0) / window, 1),
        "server_cpu_percent": server_cpu,
        "machine_cpu_percent": system_cpu,
        "other_cpu_percent": other_cpu,
        "load_average_1m": load_average,
        "concurrency": concurrency,
    }


CANNED_BODY = b'{"data":{"sessionFromToken":{"id":"1","expires":"2027-01-01T00:00:00.000000+00:00","user":null}}}'
CANNED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(CANNED_BODY) + CANNED_BODY
)


class _CannedProtocol(asyncio.Protocol):
    """Answers every HTTP/1.1 request with the same small 200 response, as fast as asyncio can."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            index = head.find(b"content-length:")
            length = int(head[index + 15 :].split(b"\r\n", 1)[0]) if index >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(CANNED_RESPONSE)  # type: ignore[attr-defined]


async def serve_canned(port: int, seconds: float) -> None:
    """A trivial server to calibrate the generator against: it costs far less than the real one."""
    server = await asyncio.get_running_loop().create_server(_CannedProtocol, "127.0.0.1", port)
    async with server:
        await asyncio.sleep(min(seconds, 600.0))


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--canned-server":
        asyncio.run(serve_canned(int(sys.argv[2]), float(sys.argv[3])))
        return 0
    job = json.load(sys.stdin)
    result = asyncio.run(run_load(job))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
