"""Login timing: does a failed login take the same time for an unknown user as for a wrong password?

    .venv/bin/python bench/login_timing.py [--attempts 200] [--warmup 10] [--json PATH]

It starts the real server (`<venv python> -m server` from the repository root, a fresh temporary
SQLite database, production Argon2 costs, a random non-default SUPERADMIN_PASSWORD,
LOGIN_RATE_LIMIT=off so no attempt is refused, LOG_LEVEL=warning) on a free 127.0.0.1 port, then
runs the measurement in a second process (this script with --measure URL): `--attempts` sequential
login attempts for an unknown user (a new identifier each time) and as many for the superadmin with
a wrong password, interleaved in pairs whose order is drawn at random, over one keep-alive
connection, after `--warmup` unmeasured pairs. Latency is the client's: from sending the request
to reading the whole answer. It checks that both kinds get the same answer, byte for byte, and
prints each distribution (median, p10, p90, p99, mean) and the ratio wrong password / unknown user.
The server is stopped in a `finally`. Results: bench/README.md, "Login timing".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.live_server import free_port, stop_process  # noqa: E402

HOST = "127.0.0.1"
SUPERADMIN = "superadmin"
LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) {
    __typename
    ... on ErrorResult { errorCode message }
    ... on InvalidCredentialsError { authenticationError }
  }
}"""
#: Settings of the machine's environment that must not leak into the server's.
SETTINGS_PREFIXES = ("DATABASE_URL", "SESSION_", "TOKEN_METHOD", "SUPERADMIN_", "LOG_LEVEL", "LOGIN_", "HOST", "PORT")
KINDS = ("unknown user", "wrong password")


def start_server(database: Path, password: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIXES)}
    env.update(
        HOST=HOST,
        PORT=str(port),
        DATABASE_URL=f"sqlite://{database}",
        SUPERADMIN_PASSWORD=password,
        LOGIN_RATE_LIMIT="off",
        LOG_LEVEL="warning",
        PYTHONDONTWRITEBYTECODE="1",
    )
    process = subprocess.Popen([sys.executable, "-m", "server"], cwd=REPO_ROOT, env=env)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_process(process, timeout=15)
    raise SystemExit("the server did not answer /health within 90 s")


def measure(url: str, attempts: int, warmup: int, password: str, seed: int) -> dict[str, Any]:
    """The second process: interleaved failing logins; latencies in seconds and the distinct answers."""
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    answers: dict[str, set[str]] = {kind: set() for kind in KINDS}
    with httpx.Client(base_url=url, timeout=60) as http:
        # The right password once: the known user exists and logs in, so a failure is only the password.
        right = http.post("/graphql", json={"query": LOGIN, "variables": {"u": SUPERADMIN, "p": password}})
        assert right.json()["data"]["login"]["__typename"] == "CachedSession", right.text
        for number in range(warmup + attempts):
            pair = list(KINDS)
            rng.shuffle(pair)
            for kind in pair:
                username = f"no-such-user-{number}-{secrets.token_hex(4)}" if kind == KINDS[0] else SUPERADMIN
                variables = {"u": username, "p": f"wrong-{secrets.token_hex(8)}"}
                http.cookies.clear()
                started = time.perf_counter()
                response = http.post("/graphql", json={"query": LOGIN, "variables": variables})
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
                answers[kind].add(response.text)
                if number >= warmup:
                    latencies[kind].append(elapsed)
    return {"latencies": latencies, "answers": {kind: sorted(texts) for kind, texts in answers.items()}}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "median": statistics.median(ordered),
        "p10": cuts[9],
        "p90": cuts[89],
        "p99": cuts[98],
        "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered),
    }


def report(result: dict[str, Any], attempts: int) -> dict[str, Any]:
    stats = {kind: summary(result["latencies"][kind]) for kind in KINDS}
    ratio = {key: stats[KINDS[1]][key] / stats[KINDS[0]][key] for key in ("median", "p10", "p90", "p99", "mean")}
    same_answer = result["answers"][KINDS[0]] == result["answers"][KINDS[1]] and len(result["answers"][KINDS[0]]) == 1
    print(f"{attempts} attempts of each kind, interleaved; latency in ms (client side, loopback)")
    print(f"{'':16} {'median':>8} {'p10':>8} {'p90':>8} {'p99':>8} {'mean':>8} {'stdev':>8}")
    for kind in KINDS:
        row = stats[kind]
        print(
            f"{kind:16} "
            + " ".join(f"{row[key] * 1000:8.1f}" for key in ("median", "p10", "p90", "p99", "mean", "stdev"))
        )
    print(f"{'ratio':16} " + " ".join(f"{ratio[key]:8.3f}" for key in ("median", "p10", "p90", "p99", "mean")))
    print(f"same answer for both: {same_answer} ({result['answers'][KINDS[0]][0]})")
    return {
        "attempts": attempts,
        "stats": stats,
        "ratio_wrong_password_to_unknown_user": ratio,
        "same_answer": same_answer,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=200, help="measured attempts of each kind")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured pairs first")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random order within each pair")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # the second process
    parser.add_argument("--password", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        json.dump(measure(args.measure, args.attempts, args.warmup, args.password, args.seed), sys.stdout)
        return 0

    password = f"bench-{secrets.token_urlsafe(12)}"
    with tempfile.TemporaryDirectory(prefix="login-timing-") as folder:
        process, url = start_server(Path(folder) / "sessions.sqlite3", password)
        try:
            command = [sys.executable, __file__, "--measure", url, "--password", password]
            command += ["--attempts", str(args.attempts), "--warmup", str(args.warmup), "--seed", str(args.seed)]
            measured = subprocess.run(command, check=True, capture_output=True, text=True)
        finally:
            stop_process(process, timeout=15)
    results = report(json.loads(measured.stdout), args.attempts)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["same_answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
