"""What the instances acknowledged, and the invariants every later answer is checked against.

1. A token whose revocation was acknowledged (the answer was received) is not accepted by a request
   sent more than `bound` seconds later, on either instance.
2. An acknowledged cart line is in the cart with at least the acknowledged quantity (and with no
   more than was sent, counting requests whose outcome is unknown).
3. No answer is a server error (5xx, no answer, INTERNAL_SERVER_ERROR) unless the request overlapped
   a PostgreSQL outage window.
4. After each fault both instances serve correctly again within the recovery timeout, same processes.
Beyond these, a live session (never revoked) must resolve, and valid credentials must be accepted.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tests.soak.client import Answer, Traffic

REVOKED_ACCEPTED = "revoked token accepted"
CART_LINE_LOST = "acknowledged cart line lost"
CART_EXCESS = "cart holds more than was sent"
SERVER_ERROR = "server error outside a database outage"
NOT_RECOVERED = "not recovered in time"
LIVE_REJECTED = "live session not found"
CREDENTIALS_REFUSED = "valid credentials refused"
VIOLATION_KINDS = (
    REVOKED_ACCEPTED, CART_LINE_LOST, SERVER_ERROR, NOT_RECOVERED, CART_EXCESS, LIVE_REJECTED, CREDENTIALS_REFUSED,
)  # fmt: skip
EXAMPLES_PER_KIND = 5


@dataclass
class Cart:
    """A guest session's cart: per variant, the quantity acknowledged and the quantity whose outcome is
    unknown (in flight, or answered with an error after which the line may or may not have been added)."""

    token: str
    acknowledged: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    #: time.monotonic() of the last add
    touched: float = 0.0

    def sending(self, variant: str, quantity: int) -> None:
        self.unknown[variant] += quantity
        self.touched = time.monotonic()

    def answered(self, variant: str, quantity: int, acknowledged: bool) -> None:
        if acknowledged:
            self.unknown[variant] -= quantity
            self.acknowledged[variant] += quantity


@dataclass(frozen=True)
class Revocation:
    token: str
    kind: str
    instance: str
    #: time.monotonic() when the acknowledgement was received
    acknowledged: float


@dataclass
class Ledger:
    bound: float
    carts: list[Cart] = field(default_factory=list)
    revocations: list[Revocation] = field(default_factory=list)
    live_guests: list[str] = field(default_factory=list)
    checks: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    #: PostgreSQL outage windows (start, end); end None while it lasts
    outages: list[tuple[float, float | None]] = field(default_factory=list)
    #: revoked tokens accepted (within the bound or not), and the latest, in seconds after the acknowledgement
    acceptances: int = 0
    latest_acceptance: float = 0.0
    started: float = field(default_factory=time.monotonic)
    #: the step under way, named in the examples
    step: str = "set-up"
    _errors_judged: int = 0

    def violation(self, kind: str, example: str) -> None:
        self.violations[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES_PER_KIND:
            examples.append(f"[{time.monotonic() - self.started:.1f} s, {self.step}] {example}")

    # -------------------------------------------------------------------------------- revocations

    def revoked(self, revocation: Revocation) -> None:
        self.revocations.append(revocation)

    def check_revoked(self, revocation: Revocation, answer: Answer, field_name: str) -> None:
        """`answer` (to a request resolving the revoked token) must not hold a session."""
        if not answer.ok:
            return
        self.checks["revoked-token probes"] += 1
        if answer.value(field_name) is None:
            return
        late = answer.sent - revocation.acknowledged
        self.acceptances += 1
        self.latest_acceptance = max(self.latest_acceptance, late)
        if late > self.bound:
            self.violation(
                REVOKED_ACCEPTED,
                f"{answer.operation} on {answer.instance} accepted a token {late:.2f} s after its revocation "
                f"({revocation.kind} on {revocation.instance}) was acknowledged",
            )

    # ------------------------------------------------------------------------------ live sessions

    def check_live(self, answer: Answer, field_name: str, what: str) -> None:
        if not answer.ok:
            return
        self.checks["live-session lookups"] += 1
        if answer.value(field_name) is None:
            self.violation(LIVE_REJECTED, f"{answer.operation} on {answer.instance} did not find a live {what}")

    # -------------------------------------------------------------------------------------- carts

    def check_cart(self, cart: Cart, floor: Counter[str], answer: Answer) -> None:
        """`floor`: the acknowledged quantities as they were when the request was sent; the ceiling
        is what had been sent by the time the answer arrived (read now)."""
        if not answer.ok:
            return
        order = answer.value("activeOrder")
        held: Counter[str] = Counter()
        for line in (order or {}).get("lines", []):
            held[line["productVariantId"]] += line["quantity"]
        for variant in set(floor) | set(held) | set(cart.unknown):
            low, high = floor[variant], cart.acknowledged[variant] + cart.unknown[variant]
            if low == 0 and high == 0 and held[variant] == 0:
                continue
            self.checks["cart lines"] += 1
            if held[variant] < low:
                self.violation(
                    CART_LINE_LOST,
                    f"activeOrder on {answer.instance}: {variant} x{held[variant]}, acknowledged x{low} "
                    f"(order {None if order is None else order['id']})",
                )
            elif held[variant] > high:
                self.violation(
                    CART_EXCESS, f"activeOrder on {answer.instance}: {variant} x{held[variant]}, at most x{high} sent"
                )

    # ---------------------------------------------------------------------------- server errors

    def outage_began(self) -> None:
        self.outages.append((time.monotonic(), None))

    def outage_ended(self) -> None:
        start, _ = self.outages[-1]
        self.outages[-1] = (start, time.monotonic())

    def judge_server_errors(self, traffic: Traffic) -> None:
        """Judge the server errors recorded since the last call against the closed outage windows."""
        self.checks["answers"] = traffic.total
        pending = traffic.server_errors[self._errors_judged :]
        self._errors_judged = len(traffic.server_errors)
        for answer in pending:
            if not self._during_outage(answer):
                self.violation(SERVER_ERROR, answer.describe())

    def _during_outage(self, answer: Answer) -> bool:
        return any(answer.sent <= (end or time.monotonic()) and answer.received >= start for start, end in self.outages)

    def excused_errors(self, traffic: Traffic) -> int:
        return sum(1 for answer in traffic.server_errors if self._during_outage(answer))
