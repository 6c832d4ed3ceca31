"""Replays of one script of requests through Strawberry's execution and through the compiled path.

Both replays start from the same empty, bootstrapped database with the same deterministic token
generator and a frozen session clock, so a script that changes state (logins, new sessions,
deletions) changes it identically on both sides: every answer must then be equal byte for byte,
with the same status and headers. The compiled replay first runs the script once to give every
document its first use through Strawberry (which validates it), then restarts the same app on an
emptied database (its document cache survives) and runs the script again, now from the plans, and
for plain requests through the lean HTTP path (schema/compiled/lean.py), which it counts.

Tortoise keeps one global context, so the replays run one after the other, never side by side.
"""

from __future__ import annotations

import http.cookies
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from strawberry.http import GraphQLRequestData

from schema.compiled import CompiledPath, allowed_operations
from schema.view import SessionGraphQL
from server.app import create_app
from server.cache import build_session_cache
from server.services.session import SessionService
from server.settings import Settings
from tests.conftest import Backend, SettingsFactory

#: The session clock of both replays (unix seconds): far from any expiry or sliding.
FROZEN_NOW = 1_900_000_000.0
CALLERS = ("nobody", "guest", "user", "superadmin")

LOGIN = """mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { __typename ... on CachedSession { token } }
}"""
CREATE_ANONYMOUS = "mutation { createAnonymousSession { token } }"
CREATE_ROLE = """mutation Role($input: CreateRoleInput!) { createRole(input: $input) { id } }"""
CREATE_USER = """mutation User($input: CreateUserInput!) { createUser(input: $input) { id identifier } }"""


#: Accept headers a step may send: those the lean path answers, and others it leaves to Strawberry.
PLAIN_ACCEPTS: tuple[str | None, ...] = (None, "*/*", "application/json")
ACCEPTS: tuple[str | None, ...] = (*PLAIN_ACCEPTS, "application/graphql-response+json", "text/html, */*")


@dataclass(frozen=True)
class Step:
    caller: str
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    #: POST (a JSON body) or GET (query parameters)
    method: str = "POST"
    accept: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Replay:
    answers: list[Answer] = field(default_factory=list)
    #: for the compiled replay: how many script steps had a plan (the rest fell back)
    compiled_steps: int = 0
    #: for the compiled replay: how many script steps the lean HTTP path answered
    lean_steps: int = 0


class DeterministicRandomness:
    """`secrets.token_urlsafe` and `secrets.choice` as counters, restarted for each replay; the
    session clock and the cookie expiry dates (`http.cookies._getdate`, wall clock) frozen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counter = itertools.count()
        monkeypatch.setattr(secrets, "token_urlsafe", self.token_urlsafe)
        monkeypatch.setattr(secrets, "choice", self.choice)
        assert SessionService.__init__.__defaults__ is not None and len(SessionService.__init__.__defaults__) == 1
        monkeypatch.setattr(SessionService.__init__, "__defaults__", (self.clock,))
        assert build_session_cache.__kwdefaults__ is not None and "clock" in build_session_cache.__kwdefaults__
        monkeypatch.setitem(build_session_cache.__kwdefaults__, "clock", self.clock)
        monkeypatch.setattr(http.cookies, "_getdate", _frozen_cookie_date)

    def restart(self) -> None:
        self.counter = itertools.count()

    def token_urlsafe(self, nbytes: int | None = None) -> str:
        return f"tok{next(self.counter):0{max(8, (nbytes or 32) - 3)}d}"

    def choice(self, sequence: Sequence[Any]) -> Any:
        return sequence[next(self.counter) % len(sequence)]

    @staticmethod
    def clock() -> float:
        return FROZEN_NOW


def _frozen_cookie_date(future: float = 0) -> str:
    """http.cookies._getdate on the frozen clock (a cookie's `expires` attribute)."""
    year, month, day, hh, mm, ss, weekday, *_ = time.gmtime(FROZEN_NOW + future)
    weekday_name = http.cookies._weekdayname[weekday]  # type: ignore[attr-defined]
    month_name = http.cookies._monthname[month]  # type: ignore[attr-defined]
    return f"{weekday_name}, {day:02d} {month_name:>3} {year:4d} {hh:02d}:{mm:02d}:{ss:02d} GMT"


def graphql_view(app: Starlette) -> SessionGraphQL:
    for route in app.routes:
        endpoint: Any = getattr(route, "app", None)
        while endpoint is not None and not isinstance(endpoint, SessionGraphQL):
            endpoint = getattr(endpoint, "app", None)
        if isinstance(endpoint, SessionGraphQL):
            return endpoint
    raise AssertionError("no SessionGraphQL view in the app")


class TwinReplays:
    """Runs scripts on fresh apps; `fresh_settings()` gives settings on an empty database each time."""

    def __init__(
        self,
        fresh_settings: Callable[[], Settings],
        reset_database: Callable[[Settings], Any],
        randomness: DeterministicRandomness,
    ) -> None:
        self.fresh_settings = fresh_settings
        self.reset_database = reset_database
        self.randomness = randomness

    async def strawberry(self, script: Sequence[Step]) -> Replay:
        settings = self.fresh_settings()
        app = create_app(settings)
        view = graphql_view(app)
        view.compiled = view.lean = None
        await self.reset_database(settings)
        return await self._run(app, script)

    async def compiled(self, script: Sequence[Step]) -> Replay:
        settings = self.fresh_settings()
        app = create_app(settings)
        compiled = graphql_view(app).compiled
        assert isinstance(compiled, CompiledPath)
        await self.reset_database(settings)
        await self._run(app, script)  # each document's first use: Strawberry validates it
        await self.reset_database(settings)
        replay = await self._run(app, script, count_plans=compiled)
        return replay

    async def _run(self, app: Starlette, script: Sequence[Step], count_plans: CompiledPath | None = None) -> Replay:
        self.randomness.restart()
        replay = Replay()
        lean = graphql_view(app).lean
        answered: list[object] = []
        if lean is not None:
            respond = lean.respond

            async def counted(request: Any) -> Any:
                response = await respond(request)
                if response is not None:
                    answered.append(response)
                return response

            lean.respond = counted  # type: ignore[method-assign]
        try:
            async with _client(app) as http:
                tokens = await _callers(http, replay)
                answered.clear()
                for step in script:
                    if count_plans is not None and _has_plan(count_plans, step):
                        replay.compiled_steps += 1
                    replay.answers.append(await _post(http, step, tokens))
        finally:
            if lean is not None:
                del lean.respond
        replay.lean_steps = len(answered)
        return replay


@asynccontextmanager
async def _client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            del http.headers["accept"]  # a step sends its own, or none
            yield http


async def _callers(http: httpx.AsyncClient, replay: Replay) -> dict[str, str | None]:
    """The same four callers in every replay (their answers are compared too)."""

    async def setup(step: Step, tokens: dict[str, str | None]) -> dict[str, Any]:
        answer = await _post(http, step, tokens)
        replay.answers.append(answer)
        body: dict[str, Any] = httpx.Response(answer.status, content=answer.body).json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    tokens: dict[str, str | None] = {"nobody": None}
    login = {"username": "superadmin", "password": "superadmin"}
    tokens["superadmin"] = (await setup(Step("nobody", LOGIN, login), tokens))["login"]["token"]
    tokens["guest"] = (await setup(Step("nobody", CREATE_ANONYMOUS), tokens))["createAnonymousSession"]["token"]
    role = {"code": "reader", "permissions": ["ReadSession", "ReadUser"], "channelIds": ["1"]}
    role_id = (await setup(Step("superadmin", CREATE_ROLE, {"input": role}), tokens))["createRole"]["id"]
    user = {"identifier": "reader", "password": "pw-reader", "verified": True, "roleIds": [role_id]}
    await setup(Step("superadmin", CREATE_USER, {"input": user}), tokens)
    credentials = {"username": "reader", "password": "pw-reader"}
    tokens["user"] = (await setup(Step("nobody", LOGIN, credentials), tokens))["login"]["token"]
    return tokens


async def _post(http: httpx.AsyncClient, step: Step, tokens: dict[str, str | None]) -> Answer:
    payload: dict[str, Any] = {"query": step.query}
    if step.variables is not None:
        payload["variables"] = step.variables
    if step.operation_name is not None:
        payload["operationName"] = step.operation_name
    token = tokens[step.caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if step.accept is not None:
        headers["accept"] = step.accept
    http.cookies.clear()  # every caller is its bearer token alone
    if step.method == "GET":
        params = {key: value if isinstance(value, str) else json.dumps(value) for key, value in payload.items()}
        response = await http.get("/graphql", params=params, headers=headers)
    else:
        response = await http.post("/graphql", json=payload, headers=headers)
    return Answer(response.status_code, list(response.headers.raw), response.content)


def lean_expected(step: Step, has_plan: bool) -> bool:
    """Whether the lean path should answer `step` (a plan, and an Accept header it takes)."""
    return has_plan and step.accept in PLAIN_ACCEPTS


def _has_plan(compiled: CompiledPath, step: Step) -> bool:
    """Whether the compiled path answers this step (as the view asks it, before the request)."""
    request = GraphQLRequestData(
        query=step.query, variables=step.variables, operation_name=step.operation_name, extensions=None, protocol="http"
    )
    return compiled.prepare(request, allowed_operations(step.method, True)) is not None


@pytest.fixture
def twins(
    tmp_path: Path,
    make_settings: SettingsFactory,
    backend: Backend,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> TwinReplays:
    randomness = DeterministicRandomness(monkeypatch)
    if backend.is_postgres:
        shared = request.getfixturevalue("shared_services")

        async def reset_postgres(settings: Settings) -> None:
            await shared.reset_database()
            await shared.delete_namespace(settings.session_cache_namespace)

        return TwinReplays(lambda: make_settings(login_rate_limit=None), reset_postgres, randomness)

    async def reset_sqlite(settings: Settings) -> None:
        database = Path(settings.database_url.removeprefix("sqlite://"))
        for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            path.unlink(missing_ok=True)

    return TwinReplays(sqlite_settings(tmp_path, make_settings), reset_sqlite, randomness)


def sqlite_settings(directory: Path, make: Callable[..., Settings]) -> Callable[[], Settings]:
    numbers = itertools.count()
    return lambda: make(database_url=f"sqlite://{directory / f'twin-{next(numbers)}.sqlite3'}", login_rate_limit=None)
