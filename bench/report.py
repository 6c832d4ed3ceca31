"""What a benchmark reports: the machine it ran on, the medians over runs, and the printed table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import REPO_ROOT

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "tortoise-orm",
    "aiocache",
    "aiosqlite",
    "asyncpg",
    "redis",
    "argon2-cffi",
    "h11",
    "httptools",
    "uvloop",
)


def machine_info(python: str) -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total_mib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_mib = int(line.split()[1]) // 1024
    except OSError:
        pass
    probe = (
        "import json, sys, importlib.metadata as m, importlib.util as u\n"
        f"names = {list(PACKAGES)!r}\n"
        "versions = {}\n"
        "for n in names:\n"
        "    try: versions[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: versions[n] = None\n"
        "print(json.dumps({'python': sys.version.split()[0], 'implementation': sys.implementation.name,\n"
        "  'packages': versions}))\n"
    )
    try:
        probed = json.loads(
            subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True).stdout
        )
    except (subprocess.SubprocessError, ValueError) as error:
        probed = {"error": repr(error)}
    packages = probed.get("packages", {})
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mib": mem_total_mib,
        "kernel": platform.release(),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "server_python": python,
        "python_version": probed.get("python"),
        "generator_python": sys.version.split()[0],
        "packages": packages,
        # uvicorn picks uvloop / httptools when installed, else asyncio / h11.
        "uvicorn_loop": "uvloop" if packages.get("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if packages.get("httptools") else "h11",
    }


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    rps = [r["requests_per_second"] for r in runs]
    return {
        "runs": len(runs),
        "requests_per_second_median": median(rps),
        "requests_per_second_min": min(rps) if rps else None,
        "requests_per_second_max": max(rps) if rps else None,
        "p50_ms_median": median([r["latency_ms"]["p50"] for r in runs]),
        "p99_ms_median": median([r["latency_ms"]["p99"] for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "generator_cpu_percent_median": median([r["generator_cpu_percent"] for r in runs]),
        "server_cpu_percent_median": median([r["server_cpu_percent"] for r in runs]),
        "other_cpu_percent_median": median([r.get("other_cpu_percent") for r in runs]),
        # server CPU time per answered request: less sensitive than req/s to a busy machine
        "server_cpu_ms_per_request_median": median(
            [
                10.0 * r["server_cpu_percent"] / r["requests_per_second"]
                if r["server_cpu_percent"] is not None and r["requests_per_second"]
                else None
                for r in runs
            ]
        ),
        "load_average_1m_median": median([r.get("load_average_1m") for r in runs]),
        "runs_started_on_busy_machine": sum(1 for r in runs if not r.get("before_run", {}).get("machine_quiet", True)),
    }


def print_table(backend: str, summaries: dict[str, dict[str, Any]], failures: dict[str, str]) -> None:
    header = (
        f"{'scenario':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'runs':>5}"
        f" {'rps min..max':>15} {'gen CPU':>8} {'srv CPU':>8} {'other CPU':>9} {'srv ms/req':>10}"
    )
    print(f"\nsession service benchmark, backend {backend} (medians over runs)")
    print(header)
    print("-" * len(header))

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for name, s in summaries.items():
        spread = f"{fmt(s['requests_per_second_min'], '.0f')}..{fmt(s['requests_per_second_max'], '.0f')}"
        print(
            f"{name:<10} {fmt(s['requests_per_second_median'], '.1f'):>9} {fmt(s['p50_ms_median'], '.2f'):>8}"
            f" {fmt(s['p99_ms_median'], '.2f'):>8} {s['errors']:>7} {s['runs']:>5} {spread:>15}"
            f" {fmt(s['generator_cpu_percent_median'], '.0f') + '%':>8}"
            f" {fmt(s['server_cpu_percent_median'], '.0f') + '%':>8}"
            f" {fmt(s['other_cpu_percent_median'], '.0f') + '%':>9}"
            f" {fmt(s['server_cpu_ms_per_request_median'], '.3f'):>10}"
        )
    for name, reason in failures.items():
        print(f"{name:<10} FAILED: {reason.splitlines()[0] if reason else ''}")
    print(
        "CPU in % of one core over the measured window: gen = load generator, srv = server process (all"
        " threads),\nother = the rest of the machine (PostgreSQL/Redis backends, other users' processes);"
        " srv ms/req = server CPU time per answered request."
    )


def control_ratios(summaries: dict[str, dict[str, Any]], controls: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """For each scenario and each control that ran: its req/s over the control's, and its server CPU
    per request over the control's (medians over runs)."""

    def ratio(value: float | None, control: float | None) -> float | None:
        return round(value / control, 3) if value is not None and control else None

    ratios: dict[str, dict[str, Any]] = {}
    for name, summary in summaries.items():
        ratios[name] = {
            control: {
                "requests_per_second": ratio(
                    summary["requests_per_second_median"], summaries[control]["requests_per_second_median"]
                ),
                "server_cpu_ms_per_request": ratio(
                    summary["server_cpu_ms_per_request_median"],
                    summaries[control]["server_cpu_ms_per_request_median"],
                ),
            }
            for control in controls
            if control in summaries
        }
    return ratios


def print_ratios(ratios: dict[str, dict[str, Any]]) -> None:
    controls = sorted({control for by_control in ratios.values() for control in by_control})
    if not controls:
        return
    header = f"{'scenario':<10}" + "".join(f" {'rps/' + c:>16} {'cpu/' + c:>16}" for c in controls)
    print("\nratios to the controls (req/s over the control's; server CPU per request over the control's)")
    print(header)
    print("-" * len(header))
    for name, by_control in ratios.items():
        cells = []
        for control in controls:
            values = by_control.get(control, {})
            for key in ("requests_per_second", "server_cpu_ms_per_request"):
                value = values.get(key)
                cells.append(f" {'-' if value is None else format(value, '.2f'):>16}")
        print(f"{name:<10}" + "".join(cells))


def print_report(result: dict[str, Any], summaries: dict[str, dict[str, Any]], path: Path) -> None:
    """The table, the ratios to the controls, the machine, warnings about the generator, its ceiling
    and where the JSON went."""
    print_table(result["backend"], summaries, result["failures"])
    print_ratios(result.get("control_ratios", {}))
    machine = result["machine"]
    print(
        f"machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python_version']}, "
        f"uvicorn {machine['packages'].get('uvicorn')} ({machine['uvicorn_loop']} + {machine['uvicorn_http']})"
    )
    for name, s in summaries.items():
        if (s["generator_cpu_percent_median"] or 0) > 85:
            print(
                f"warning: the load generator used {s['generator_cpu_percent_median']}% CPU in {name}: "
                "it may be the bottleneck"
            )
    calibration = result.get("generator_calibration")
    if calibration:
        print(
            f"generator ceiling against a trivial canned server: {calibration['requests_per_second']:.0f} req/s"
            f" ({calibration['generator_cpu_percent']:.0f}% CPU of one core)"
        )
    print(f"results: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
