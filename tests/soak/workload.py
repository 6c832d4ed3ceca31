"""The mixed load: guests filling carts, users logging in and having their sessions revoked in every
way the API offers, and lookups of live and revoked tokens, each on either instance at random.

Each user belongs to one task, so its revocations never race its own logins: every token the task
holds was issued before the revocation request was sent. Any answer that is not an acknowledgement
(an error, a 5xx, no answer) leaves the user's state unknown; the task then resets the password
until that is acknowledged, which ends every session of the user, and carries on from known state.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from tests.faults import ACTIVE_ORDER, ADD_ITEM, CREATE_ANONYMOUS_SESSION, LOGIN, LOGOUT, SESSION_FROM_TOKEN
from tests.soak.client import Answer, Endpoint
from tests.soak.ledger import CREDENTIALS_REFUSED, LIVE_REJECTED, Cart, Ledger, Revocation

CREATE_USER = """
mutation U($i: String!, $p: String!) { createUser(input: {identifier: $i, password: $p, verified: true}) { id } }"""
DELETE_BY_USER = "mutation D($id: ID!) { deleteSessionsByUser(userId: $id) }"
RESET_PASSWORD = "mutation P($id: ID!, $p: String!) { updateUser(input: {id: $id, password: $p}) { id } }"
CHANGE_PASSWORD = (
    "mutation C($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { success } }"
)
ACTIVE_SESSION = "{ activeSession { id } }"

LOGOUT_KIND = "logout"
BY_ADMIN = "deleteSessionsByUser (admin)"
BY_SELF = "deleteSessionsByUser (self)"
RESET = "updateUser password"
CHANGE = "changePassword"
RESYNC = "updateUser password (after an unacknowledged answer)"
T = TypeVar("T")
REVOCATION_KINDS = (LOGOUT_KIND, BY_ADMIN, BY_SELF, RESET, CHANGE)
VARIANTS = ("sku-1", "sku-2", "sku-3", "sku-4")
ADDS_PER_CART = 6
#: Requests the end-of-step sweep keeps in flight at once.
SWEEP_CONCURRENCY = 6
#: Carts, and revoked tokens, untouched since the previous sweep that a sweep checks (a random sample).
SWEEP_SAMPLE = 100


@dataclass(frozen=True)
class Pace:
    """Mean pauses (seconds) between one task's requests; login and password changes cost an
    Argon2 hash each in the server, so the user tasks are the slowest."""

    cart: float = 0.08
    user: float = 0.8
    probe: float = 0.03


@dataclass
class Account:
    id: str
    identifier: str
    password: str
    #: tokens issued to this user and not yet revoked (as far as was acknowledged)
    held: list[str] = field(default_factory=list)


class Workload:
    def __init__(self, endpoints: list[Endpoint], ledger: Ledger, rng: random.Random, pace: Pace) -> None:
        self.endpoints = endpoints
        self.ledger = ledger
        self.rng = rng
        self.pace = pace
        self.accounts: list[Account] = []
        self.admin_token = ""
        self._superadmin_password = ""
        self._stop = asyncio.Event()
        self._swept_at = 0.0
        self._swept_carts = 0
        self._swept_revocations = 0

    def _pick(self) -> Endpoint:
        return self.rng.choice(self.endpoints)

    async def _pause(self, mean: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), mean * (0.5 + self.rng.random()))
        except TimeoutError:
            pass

    # ---------------------------------------------------------------------------------- set-up

    async def prepare(self, superadmin_password: str, users: int) -> None:
        """Log in as the superadmin and create `users` verified users through the API."""
        self._superadmin_password = superadmin_password
        await self._admin_login()
        for number in range(users):
            identifier, password = f"soak-{number}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
            answer = await self._pick().call("createUser", CREATE_USER, self.admin_token, i=identifier, p=password)
            if not answer.ok:
                raise RuntimeError(f"set-up failed: {answer.describe()}")
            self.accounts.append(Account(answer.value("createUser")["id"], identifier, password))

    async def _admin_login(self) -> None:
        for _ in range(20):
            answer = await self._pick().call("login", LOGIN, u="superadmin", p=self._superadmin_password)
            if answer.ok and answer.value("login")["__typename"] == "CachedSession":
                self.admin_token = answer.value("login")["token"]
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the superadmin cannot log in: {answer.describe()}")

    # ----------------------------------------------------------------------------------- running

    async def run(self, cart_tasks: int, probe_tasks: int) -> None:
        """Run every task until `stop()`."""
        tasks = [self._cart_loop() for _ in range(cart_tasks)]
        tasks += [self._user_loop(account) for account in self.accounts]
        tasks += [self._probe_loop() for _ in range(probe_tasks)]
        await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()

    async def _cart_loop(self) -> None:
        cart: Cart | None = None
        adds = 0
        while not self._stop.is_set():
            if cart is None or adds >= ADDS_PER_CART:
                created = await self._pick().call("createAnonymousSession", CREATE_ANONYMOUS_SESSION)
                if not created.ok:
                    await self._pause(self.pace.cart)
                    continue
                cart, adds = Cart(created.value("createAnonymousSession")["token"]), 0
                self.ledger.carts.append(cart)
            variant, quantity = self.rng.choice(VARIANTS), self.rng.randint(1, 3)
            cart.sending(variant, quantity)
            added = await self._pick().call("addItemToOrder", ADD_ITEM, cart.token, v=variant, q=quantity)
            cart.answered(variant, quantity, added.ok)
            adds += 1
            if self.rng.random() < 0.3:
                await self.check_cart(cart, self._pick())
            await self._pause(self.pace.cart)

    async def check_cart(self, cart: Cart, endpoint: Endpoint) -> None:
        floor = Counter(cart.acknowledged)
        answer = await endpoint.call("activeOrder", ACTIVE_ORDER, cart.token)
        self.ledger.check_cart(cart, floor, answer)

    async def _probe_loop(self) -> None:
        while not self._stop.is_set():
            revocations, carts = self.ledger.revocations, self.ledger.carts
            if revocations and (not carts or self.rng.random() < 0.6):
                recent = revocations[-50:] if self.rng.random() < 0.7 else revocations
                await self.probe(self.rng.choice(recent), self._pick())
            elif carts:
                answer = await self._pick().call("sessionFromToken", SESSION_FROM_TOKEN, t=self.rng.choice(carts).token)
                self.ledger.check_live(answer, "sessionFromToken", "guest session")
            await self._pause(self.pace.probe)

    async def probe(self, revocation: Revocation, endpoint: Endpoint) -> None:
        """Resolve a revoked token on `endpoint`, as an argument or as the request's bearer token."""
        if self.rng.random() < 0.5:
            answer = await endpoint.call("sessionFromToken", SESSION_FROM_TOKEN, t=revocation.token)
            self.ledger.check_revoked(revocation, answer, "sessionFromToken")
        else:
            answer = await endpoint.call("activeSession", ACTIVE_SESSION, revocation.token)
            self.ledger.check_revoked(revocation, answer, "activeSession")

    # ------------------------------------------------------------------------------------- users

    async def _user_loop(self, account: Account) -> None:
        while not self._stop.is_set():
            if not await self._user_cycle(account, self.rng.choice(REVOCATION_KINDS)):
                await self._resync(account)
            await self._pause(self.pace.user)

    async def _user_cycle(self, account: Account, kind: str) -> bool:
        """Log in once or twice, check the sessions, revoke them the `kind` way; False: not acknowledged."""
        sessions = 2 if kind == CHANGE else 1 if kind == LOGOUT_KIND else self.rng.choice((1, 2))
        for _ in range(sessions):
            if not await self._login(account):
                return False
        await self._check_live(account.held)
        tokens = list(account.held)
        revoked, kept = tokens, []
        if kind == LOGOUT_KIND:
            answer = await self._pick().call("logout", LOGOUT, tokens[0])
            acknowledged = answer.ok and answer.value("logout")["success"] is True
            revoked, kept = tokens[:1], tokens[1:]
        elif kind in (BY_ADMIN, BY_SELF):
            token = self.admin_token if kind == BY_ADMIN else tokens[0]
            answer = await self._pick().call("deleteSessionsByUser", DELETE_BY_USER, token, id=account.id)
            acknowledged = answer.ok
        elif kind == RESET:
            password = secrets.token_urlsafe(12)
            answer = await self._pick().call("updateUser", RESET_PASSWORD, self.admin_token, id=account.id, p=password)
            acknowledged = answer.ok
            account.password = password if acknowledged else account.password
        else:
            password = secrets.token_urlsafe(12)
            answer = await self._pick().call(
                "changePassword", CHANGE_PASSWORD, tokens[-1], c=account.password, n=password
            )
            acknowledged = answer.ok and answer.value("changePassword")["success"] is True
            if answer.ok and not acknowledged:
                self.ledger.violation(
                    CREDENTIALS_REFUSED, f"changePassword on {answer.instance}: current password refused"
                )
            account.password = password if acknowledged else account.password
            revoked, kept = tokens[:-1], tokens[-1:]
        if not acknowledged:
            return False
        await self._acknowledged(account, kind, answer, revoked)
        await self._check_live(kept)
        for token in kept:
            answer = await self._pick().call("logout", LOGOUT, token)
            if not (answer.ok and answer.value("logout")["success"] is True):
                return False
            await self._acknowledged(account, LOGOUT_KIND, answer, [token])
        return True

    async def _login(self, account: Account) -> bool:
        answer = await self._pick().call("login", LOGIN, u=account.identifier, p=account.password)
        if not answer.ok:
            return False
        result = answer.value("login")
        if result["__typename"] != "CachedSession":
            self.ledger.violation(CREDENTIALS_REFUSED, f"login on {answer.instance}: {result}")
            return False
        account.held.append(result["token"])
        return True

    async def _check_live(self, tokens: list[str]) -> None:
        for token in tokens:
            for endpoint in self.endpoints:
                answer = await endpoint.call("sessionFromToken", SESSION_FROM_TOKEN, t=token)
                self.ledger.check_live(answer, "sessionFromToken", "user session")

    async def _acknowledged(self, account: Account, kind: str, answer: Answer, tokens: list[str]) -> None:
        """Record the revocation of `tokens`, acknowledged by `answer`, and probe each on both instances."""
        revocations = [Revocation(token, kind, answer.instance, answer.received) for token in tokens]
        for revocation in revocations:
            self.ledger.revoked(revocation)
            account.held.remove(revocation.token)
        await asyncio.gather(
            *(self.probe(revocation, endpoint) for revocation in revocations for endpoint in self.endpoints)
        )

    async def _resync(self, account: Account) -> None:
        """Reset the password (which ends all the user's sessions) until that is acknowledged."""
        while True:
            password = secrets.token_urlsafe(12)
            answer = await self._pick().call("updateUser", RESET_PASSWORD, self.admin_token, id=account.id, p=password)
            if answer.ok:
                account.password = password
                await self._acknowledged(account, RESYNC, answer, list(account.held))
                return
            if any((error.get("extensions") or {}).get("code") == "FORBIDDEN" for error in answer.errors):
                self.ledger.violation(LIVE_REJECTED, f"the superadmin's session was refused: {answer.describe()}")
                await self._admin_login()
            if self._stop.is_set():
                account.held.clear()  # never acknowledged: nothing is claimed about these tokens
                return
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------------------------ sweeps

    async def sweep(self, everything: bool = False) -> None:
        """Check carts and revoked tokens on both instances: all of them (`everything`), or those new or
        touched since the previous sweep and a random sample of SWEEP_SAMPLE of the others of each kind."""
        carts, revocations = list(self.ledger.carts), list(self.ledger.revocations)
        if not everything:
            old_carts, old_revocations = carts[: self._swept_carts], revocations[: self._swept_revocations]
            touched = [cart for cart in old_carts if cart.touched > self._swept_at]
            untouched = [cart for cart in old_carts if cart.touched <= self._swept_at]
            carts = touched + self._sample(untouched) + carts[self._swept_carts :]
            revocations = self._sample(old_revocations) + revocations[self._swept_revocations :]
        self._swept_at = time.monotonic()
        self._swept_carts, self._swept_revocations = len(self.ledger.carts), len(self.ledger.revocations)
        limit = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def bounded(check: Awaitable[None]) -> None:
            async with limit:
                await check

        checks = [self.check_cart(cart, endpoint) for cart in carts for endpoint in self.endpoints]
        checks += [self.probe(revocation, endpoint) for revocation in revocations for endpoint in self.endpoints]
        await asyncio.gather(*(bounded(check) for check in checks))

    def _sample(self, items: list[T]) -> list[T]:
        return self.rng.sample(items, min(len(items), SWEEP_SAMPLE))
