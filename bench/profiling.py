"""`--profile`: one extra, unmeasured run per scenario under py-spy, and the summary of its stacks."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

from load_runs import Generator
from servers import Server

#: Leaf frames of threads that are blocked, not running (py-spy cannot tell a C-level wait from work).
IDLE_LEAVES = (
    "_connection_worker_thread (aiosqlite/core.py:59)",  # aiosqlite's worker waiting on its queue
    "Condition.wait (threading.py",  # idle anyio worker threads
    "Event.wait (threading.py",
    "Thread.join (threading.py",
)

#: Inclusive shares reported for these groups of frames (regular expressions over a whole stack).
PROFILE_GROUPS = {
    "uvicorn protocol + socket writes": r"RequestResponseCycle\.send|HttpToolsProtocol",
    "HTTP layer (body parsing, context, response)": r"parse_http_body|get_context|create_response",
    "Strawberry parse/validate phase": r"_prepare_operation_async",
    "Strawberry extension hooks (all phases)": r"strawberry/extensions/context\.py",
    "GraphQL execution (incl. resolvers)": r"_execute_operation",
    "SessionService (resolvers' service calls)": r"SessionService\.|AuthService\.",
    "session cache via aiocache / redis-py": r"aiocache/|redis/",
    "Tortoise query building (pypika)": r"_make_query",
    "database driver (aiosqlite / asyncpg)": r"aiosqlite/core\.py:(?!59\))|asyncpg",
    "Argon2 (password verification)": r"argon2/",
}


def profile_run(name: str, job: dict[str, Any], server: Server, py_spy: str, out_base: Path) -> dict[str, Any]:
    """One extra, unmeasured run with py-spy sampling the server after the warm-up; writes the
    collapsed stacks and a summary of the hottest frames."""
    raw_path = out_base.with_name(out_base.name + f"-{name}.pyspy.txt")
    generator = Generator(job)
    assert generator.process.stdin is not None
    generator.process.stdin.write(generator.payload)  # the job starts now; finish() sends nothing more
    generator.process.stdin.close()
    generator.process.stdin = None
    generator.payload = b""
    spy: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(float(job["warmup"]))
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(max(1, int(job["duration"]))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw_path),
                # blocking sampling (pauses the server ~0.1 ms per sample): complete stacks; this run is
                # not counted, so its own slowdown does not matter
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        result = generator.finish()
        spy.wait(timeout=30)
    finally:
        if generator.process.poll() is None:
            generator.process.kill()
            generator.process.wait(timeout=10)
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(timeout=10)
    summary = summarize_collapsed(raw_path) if raw_path.exists() else {"error": "py-spy wrote nothing"}
    summary_path = raw_path.with_suffix(".summary.txt")
    summary_path.write_text(format_profile_summary(name, summary))
    return {"raw": str(raw_path), "summary": str(summary_path), "run": result, **summary}


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per frame from py-spy's collapsed ("raw") output, over the
    samples of running threads (idle waits are dropped), plus the shares of PROFILE_GROUPS."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    groups = {name: re.compile(pattern) for name, pattern in PROFILE_GROUPS.items()}
    group_counts = dict.fromkeys(groups, 0)
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count
        for name, pattern in groups.items():
            if pattern.search(stack):
                group_counts[name] += count

    def share(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        return [(frame, share(n)) for frame, n in sorted(counts.items(), key=lambda item: -item[1])[:top]]

    return {
        "samples": total,
        "idle_samples_dropped": idle,
        "groups": {name: share(n) for name, n in group_counts.items()},
        "top_self": ranked(self_counts),
        "top_inclusive": ranked(incl_counts),
    }


def format_profile_summary(name: str, summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy profile of the server during scenario {name}: {summary.get('samples', 0)} samples of running"
        f" threads ({summary.get('idle_samples_dropped', 0)} idle-thread samples dropped)",
        "",
        "incl %  group (overlapping)",
    ]
    lines += [f"{value:6.1f}  {group}" for group, value in summary.get("groups", {}).items()]
    lines += ["", "self %  frame"]
    lines += [f"{share:6.1f}  {frame}" for frame, share in summary.get("top_self", [])]
    lines += ["", "incl %  frame"]
    lines += [f"{share:6.1f}  {frame}" for frame, share in summary.get("top_inclusive", [])]
    return "\n".join(lines) + "\n"
