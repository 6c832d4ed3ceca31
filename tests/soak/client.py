"""GraphQL over HTTP to one instance, every answer timed and counted."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

#: A client that hears nothing back within this many seconds records "no answer".
REQUEST_TIMEOUT = 30.0
KEEPALIVE_EXPIRY = 1.0
INTERNAL_ERROR = "INTERNAL_SERVER_ERROR"
JSON = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """One request and what came back; `sent` and `received` are `time.monotonic()`."""

    instance: str
    operation: str
    sent: float
    received: float
    status: int | None  # None: no answer (connection failed or timed out)
    data: JSON | None = None
    errors: tuple[JSON, ...] = ()
    failure: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.errors and self.data is not None

    @property
    def server_error(self) -> bool:
        """A 5xx, no answer at all, or a GraphQL error coded as an internal error."""
        if self.status is None or self.status >= 500:
            return True
        return any((error.get("extensions") or {}).get("code") == INTERNAL_ERROR for error in self.errors)

    def value(self, name: str) -> Any:
        """The top-level field `name` of `data` (the answer must be `ok`)."""
        assert self.data is not None
        return self.data[name]

    def describe(self) -> str:
        outcome = self.failure or f"HTTP {self.status}"
        if self.errors:
            outcome += f" {[error.get('extensions') or error.get('message') for error in self.errors]}"
        return f"{self.operation} on {self.instance}: {outcome}"


@dataclass
class Traffic:
    """Counts of every request, and the answers that were server errors."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: list[Answer] = field(default_factory=list)

    def record(self, answer: Answer) -> None:
        self.requests[answer.instance, answer.operation] += 1
        if answer.status is None:
            self.outcomes["no answer"] += 1
        elif answer.status != 200:
            self.outcomes[f"HTTP {answer.status}"] += 1
        elif answer.errors:
            self.outcomes["GraphQL error"] += 1
        else:
            self.outcomes["ok"] += 1
        if answer.server_error:
            self.server_errors.append(answer)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def by_instance(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (instance, _), count in self.requests.items():
            counts[instance] += count
        return counts

    def by_operation(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_, operation), count in self.requests.items():
            counts[operation] += count
        return counts


class Endpoint:
    """One instance, as the load and the checks see it."""

    def __init__(self, name: str, url: str, traffic: Traffic) -> None:
        self.name = name
        self.url = url
        self.traffic = traffic
        self._http = httpx.AsyncClient(
            base_url=url,
            timeout=REQUEST_TIMEOUT,
            trust_env=False,
            # Idle connections are dropped well before uvicorn's 5-second keep-alive timeout: otherwise a
            # request sent just as the server closes one fails with ReadError, a fault of neither side.
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=KEEPALIVE_EXPIRY),
        )

    async def call(self, operation: str, query: str, token: str | None = None, **variables: Any) -> Answer:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        sent = time.monotonic()
        try:
            response = await self._http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        except httpx.HTTPError as error:
            answer = Answer(self.name, operation, sent, time.monotonic(), None, failure=f"{type(error).__name__}")
        else:
            answer = _parse(self.name, operation, sent, response)
        self.traffic.record(answer)
        return answer

    async def health(self) -> int | None:
        try:
            return (await self._http.get("/health", timeout=5)).status_code
        except httpx.HTTPError:
            return None

    async def close(self) -> None:
        await self._http.aclose()


def _parse(instance: str, operation: str, sent: float, response: httpx.Response) -> Answer:
    received = time.monotonic()
    try:
        body = response.json()
    except ValueError:
        return Answer(instance, operation, sent, received, response.status_code, failure="not JSON")
    if not isinstance(body, dict):
        return Answer(instance, operation, sent, received, response.status_code, failure="not a JSON object")
    return Answer(
        instance, operation, sent, received, response.status_code, body.get("data"), tuple(body.get("errors") or ())
    )
