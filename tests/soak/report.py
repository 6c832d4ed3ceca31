"""The figures of a soak run, as Markdown tables ready to paste into tests/soak/README.md."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.soak.client import Traffic
from tests.soak.ledger import VIOLATION_KINDS, Ledger


@dataclass(frozen=True)
class StepResult:
    fault: str
    #: seconds since the load started
    at: float
    #: seconds from injecting the fault to lifting it
    held: float
    #: seconds from lifting it to both instances serving correctly; None: baseline, or not within the timeout
    recovered_in: float | None
    #: during the step: the fault, the recovery, the checks and the load after them
    requests: int
    violations: int


@dataclass
class Report:
    command: str
    seed: int
    seconds: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)
    ledger: Ledger = field(default_factory=lambda: Ledger(bound=0.0))
    steps: list[StepResult] = field(default_factory=list)
    tracebacks: dict[str, int] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(self.ledger.violations.values())

    def markdown(self) -> str:
        ledger, traffic = self.ledger, self.traffic
        faults = Counter(step.fault for step in self.steps if step.fault != BASELINE)
        recoveries = [step.recovered_in for step in self.steps if step.fault != BASELINE]
        lines_acknowledged = sum(1 for cart in ledger.carts for count in cart.acknowledged.values() if count > 0)
        rows = [
            ("command", f"`{self.command}` (seed {self.seed})"),
            ("duration", f"{self.seconds / 60:.1f} min of load"),
            ("requests", f"{traffic.total:,}: {_counts(traffic.by_instance())}"),
            ("requests by operation", _counts(traffic.by_operation())),
            ("answers", _counts(traffic.outcomes)),
            ("faults injected", f"{sum(faults.values())}: {_counts(faults)}"),
            ("invariant checks", f"{sum(ledger.checks.values()):,}: {_counts(ledger.checks)}"),
            (
                "revocations acknowledged",
                f"{len(ledger.revocations):,}: {_counts(Counter(r.kind for r in ledger.revocations))}",
            ),
            ("carts", f"{len(ledger.carts):,} guest carts, {lines_acknowledged:,} acknowledged lines"),
            ("server errors inside PostgreSQL outages (allowed)", f"{ledger.excused_errors(traffic):,}"),
            ("slowest recovery after a fault", _slowest(recoveries)),
            ("revocation bound", f"{ledger.bound:g} s after the acknowledgement"),
            ("latest acceptance of a revoked token", _latest(ledger)),
            ("violations", f"**{self.violations}**" + (f": {_counts(ledger.violations)}" if self.violations else "")),
            ("tracebacks in the server logs", _counts(Counter(self.tracebacks)) or "none"),
        ]
        table = ["| figure | value |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows)]
        table += [
            "",
            "| step | at | fault | held | recovered in | requests | violations |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for number, step in enumerate(self.steps):
            recovered = "—" if step.fault == BASELINE else seconds(step.recovered_in)
            table.append(
                f"| {number} | {step.at:.0f} s | {step.fault} | {step.held:.1f} s | {recovered} "
                f"| {step.requests:,} | {step.violations} |"
            )
        return "\n".join(table)

    def violation_examples(self) -> str:
        lines = []
        for kind in VIOLATION_KINDS:
            if self.ledger.violations[kind]:
                lines.append(f"{kind}: {self.ledger.violations[kind]}")
                lines += [f"  {example}" for example in self.ledger.examples.get(kind, [])]
        return "\n".join(lines)


BASELINE = "none (baseline)"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counter.most_common())


def seconds(value: float | None) -> str:
    """A recovery time, or that there was none."""
    return "not recovered" if value is None else f"{value:.1f} s"


def _latest(ledger: Ledger) -> str:
    probes = ledger.checks["revoked-token probes"]
    if not ledger.acceptances:
        return f"none in {probes:,} probes"
    latest = f"{ledger.latest_acceptance:.2f} s after the acknowledgement"
    return f"{ledger.acceptances:,} of {probes:,} probes; the latest {latest}"


def _slowest(recoveries: list[float | None]) -> str:
    missed = recoveries.count(None)
    if missed:
        return f"not recovered after {missed} of {len(recoveries)} faults"
    return f"{max((value for value in recoveries if value is not None), default=0.0):.1f} s"
