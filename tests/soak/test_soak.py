"""The soak under faults, short: one cycle of every fault with 6-second holds, about 75 s in all.

It runs with SOAK=1 only, and is skipped with the reason where network namespaces cannot be made.
It is not yet part of CI: while one instance is cut off from Redis, a revocation made there cannot
reach the shared cache, and the other instance serves the cached copy until the partition heals
(issue 10's invalidation work closes this; see README.md). The longer run whose figures README.md reports is
`.venv/bin/python -m tests.soak.run --minutes 5`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.soak.network import NamespaceUnavailable
from tests.soak.run import Options, soak

pytestmark = pytest.mark.soak


def test_no_invariant_is_violated_while_faults_are_injected(tmp_path: Path) -> None:
    if os.environ.get("SOAK") != "1":
        pytest.skip(
            "opt-in (SOAK=1): it still finds stale copies served during a cache partition, see tests/soak/README.md"
        )
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(2**31))
    options = Options(minutes=0, hold=6.0, steady=7.0, seed=seed)
    try:
        report = soak(options, tmp_path, command=f"SOAK=1 SOAK_SEED={seed} .venv/bin/python -m pytest -m soak")
    except NamespaceUnavailable as error:
        pytest.skip(f"network namespaces are unavailable: {error}")
    if report.violations:
        pytest.fail(f"{report.violations} violations\n{report.violation_examples()}\n\n{report.markdown()}")
    assert report.ledger.checks["revoked-token probes"] > 0 and report.ledger.checks["cart lines"] > 0
