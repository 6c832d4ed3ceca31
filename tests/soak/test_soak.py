"""The soak under faults, short: one cycle of every fault with 6-second holds, about 75 s in all.

It runs under REQUIRE_SERVICES=1 (CI) or SOAK=1, and is skipped with the reason where network
namespaces cannot be made. The longer run whose figures README.md reports is
`.venv/bin/python -m tests.soak.run --minutes 5`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.conftest import services_required
from tests.soak.network import NamespaceUnavailable
from tests.soak.run import Options, soak

pytestmark = pytest.mark.soak


def test_no_invariant_is_violated_while_faults_are_injected(tmp_path: Path) -> None:
    if not services_required() and os.environ.get("SOAK") != "1":
        pytest.skip("the soak runs under REQUIRE_SERVICES=1 (CI) or SOAK=1")
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(2**31))
    options = Options(minutes=0, hold=6.0, steady=7.0, seed=seed)
    try:
        report = soak(options, tmp_path, command=f"SOAK=1 SOAK_SEED={seed} .venv/bin/python -m pytest -m soak")
    except NamespaceUnavailable as error:
        pytest.skip(f"network namespaces are unavailable: {error}")
    if report.violations:
        pytest.fail(f"{report.violations} violations\n{report.violation_examples()}\n\n{report.markdown()}")
    assert report.ledger.checks["revoked-token probes"] > 0 and report.ledger.checks["cart lines"] > 0
