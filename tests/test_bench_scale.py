"""The scale benchmark (bench/scale.py) end to end in its quick mode: real servers, PostgreSQL and Redis.

PostgreSQL only by nature (its subject is PostgreSQL + Redis at scale); skipped, or failed with
REQUIRE_SERVICES=1, like every test needing those services. About 40 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

SIZES = ("1000", "10000")
CONFIGS = ("uncached", "cached")


def run_quick_bench(admin_url: str, redis_url: str, output_dir: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    command = [sys.executable, "-m", "bench.scale", "--quick", "--pg-admin-url", admin_url, "--redis-url", redis_url]
    process = subprocess.run(
        [*command, "--output-dir", str(output_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240
    )
    results = list(output_dir.glob("*-scale.json"))
    assert len(results) == 1, process.stderr[-3000:]
    return process, json.loads(results[0].read_text())


def test_quick_scale_bench_reports_lookups_memory_and_clean(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    # given the quick mode (10^3 and 10^4 sessions, 10^4 expired)
    # when it runs against the test services
    process, report = run_quick_bench(postgres_url, redis_url, tmp_path)

    # then every request succeeded and each part reports its figures against its target
    assert process.returncode == 0, process.stderr[-3000:]
    lookups = report["lookups"]
    for config in CONFIGS:
        assert list(lookups[config]) == list(SIZES)
        for summary in lookups[config].values():
            assert summary["errors"] == 0
            assert summary["requests"] > 0
            assert 0 < summary["p50_ms_median"] <= summary["p99_ms_median"]
        assert set(lookups["flatness"][config]) == {
            "p50_ms_smallest",
            "p50_ms_largest",
            "change",
            "spread",
            "within_target",
        }
    memory = report["memory"]
    assert memory["check_answered_from_cache"] == memory["check_lookups"] > 0
    assert memory["rss_mb"] >= memory["rss_mb_at_start"] > 0
    clean = report["clean"]
    for run in (clean["alone"], clean["with_lookups"]):
        assert run["removed"] == run["expired"] == 10_000
        assert run["left"] == {"sessions": run["live"], "expired": 0}
        assert 0 < run["elapsed_with_nothing_to_clean_s"] and 0 < run["elapsed_s"]
    served = clean["with_lookups"]["lookups"]
    for config in CONFIGS:
        assert served[config]["before"]["errors"] == 0 and served[config]["before"]["requests"] > 0
    assert clean["within_target"] is (clean["with_lookups"]["elapsed_s"] < 60)
    assert "\nclean (" in process.stdout and "\nmemory:" in process.stdout and "\nlookups (" in process.stdout
