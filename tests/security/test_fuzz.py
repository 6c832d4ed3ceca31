"""Property-based fuzzing: operations generated from our own schema, thrown at the real app.

Design. Each test starts the app once (conftest's `make_client`: lifespan, database and cache on the
test's event loop, on each backend) and throws all of its examples at that one running app. `@given`
is synchronous and an app per example would cost a start each, so each test defines its property as
an inner `@given` function and runs the whole Hypothesis loop (generation, shrinking, reporting) in a
worker thread with `anyio.to_thread.run_sync`; each example hands its request back to the event loop
hosting the app with `anyio.from_thread.run` and waits for the answer. The loop stays free while
Hypothesis generates; the app keeps its state across examples, as a long-running server does.

Three personas send the examples: nobody (no token), a guest (an anonymous session's bearer token)
and the superadmin (bearer token), so permission-gated resolvers are refused and reached. What an
example may break for the next ones (a logged-out guest or admin, a deleted, renamed, re-passworded
or demoted superadmin) is repaired after any such mutation that succeeded.

Four tests, 1700 examples per backend (3400 on sqlite + postgres), about 40 s on two cores:
schema-valid documents (Hypothesis-GraphQL, whole-schema and single-field, with IDs and strings
biased towards real rows, credentials, tokens and junk), documents with one schema violation,
one root field with its arguments as JSON variables of any shape (lone surrogates, huge numbers),
and malformed HTTP requests. Every answer must be below 500 with no traceback, every GraphQL error
must carry one of the contract's client codes (never INTERNAL_SERVER_ERROR); afterwards /health
answers 200, a guest session can still be created, and nothing was logged as an error.
Hypothesis runs derandomised without an example database, so CI runs the same examples every time;
FUZZ_SCALE=10 runs ten times as many.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

import anyio.from_thread
import anyio.to_thread
import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from models import Channel, Permission, Role, User
from schema.schema import build_schema
from server.services import passwords
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.passwords import hash_password
from server.settings import Settings
from tests.graphql import GraphQLClient

SettingsFactory = Callable[..., Settings]
MakeClient = Callable[[Settings], Any]

SDL = build_schema().as_str()
SCHEMA = graphql.build_schema(SDL)
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))

#: The codes the contract lets a client see; INTERNAL_SERVER_ERROR is the one that must never appear.
CLIENT_CODES = frozenset({"BAD_USER_INPUT", "FORBIDDEN", "ENTITY_NOT_FOUND"})
#: What a transport-level refusal (a 4xx before execution, server/graphql_http.py) may say instead.
REFUSAL_CODES = frozenset(
    {"BAD_REQUEST", "CHANNEL_NOT_FOUND", "METHOD_NOT_ALLOWED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"}
)
ADMIN = ("superadmin", "superadmin")  # make_settings keeps the default superadmin credentials
PERSONAS = ("nobody", "guest", "admin", "admin")
LOGIN_TOKEN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on CachedSession { token } } }"
)
#: Words of operations that may end the guest's or the admin's session or strip the SuperAdmin role.
DESTRUCTIVE = (
    "logout",
    "deleteSessions",
    "cleanExpiredSessions",
    "updateRole",
    "updateUser",
    "deleteUser",
    "changePassword",
)

HOSTILE_IDS = (
    "0", "-1", "1e9", " 1", "1 ", "0x10", "+1", "01", "1.0", "١٢٣", "１", "99999999999999999999",
    "2147483647", "2147483648", "9" * 41, "", " ", "1\x00", "null",
)  # fmt: skip
HOSTILE_TEXT = (
    "", " ", "\x00", "a\x00b", "' OR 1=1 --", "'; DROP TABLE users; --", "%", "_", "\\", '"', "\n\r\t",
    "\u202e", "\ufeff", "𝕏💥", "null", "undefined", "NaN", "__default_channel__", "__super_admin_role__", "native",
)  # fmt: skip


def examples(count: int) -> int:
    return max(1, int(count * SCALE))


def fuzz_settings(count: int) -> settings:
    """Reproducible (derandomised, no example database), no deadline: a request's time is not the property."""
    return settings(
        max_examples=examples(count),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def error_codes(response: httpx.Response) -> list[Any]:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return []
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    return [(error.get("extensions") or {}).get("code") for error in errors or []]


def check_answer(response: httpx.Response) -> None:
    """No 5xx, no traceback, and every GraphQL error carries one of the contract's client codes (or, in
    a 4xx refusal, a refusal's code)."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:500]
    allowed = CLIENT_CODES if response.status_code == 200 else CLIENT_CODES | REFUSAL_CODES
    for code in error_codes(response):
        assert code in allowed, response.text[:500]


class Fuzzer:
    """The running app, the tokens of its personas, and the bridge from Hypothesis's thread."""

    def __init__(self, client: GraphQLClient) -> None:
        self.http = client.http
        self.admin_token = ""
        self.guest_token = ""
        self.channel_token = ""
        self.requests = 0
        #: What the answers held: "data" per root field answered, each error code, each non-200 status.
        self.outcomes: Counter[str] = Counter()

    async def start(self) -> None:
        self.admin_token = await self._login_admin()
        self.guest_token = await self._new_guest()
        body = await self._graphql("{ activeChannel { token } }")
        self.channel_token = body["data"]["activeChannel"]["token"]

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `await function(*args, **kwargs)` on the app's event loop, from Hypothesis's worker thread."""
        return anyio.from_thread.run(functools.partial(function, *args, **kwargs))

    def known_text(self) -> tuple[str, ...]:
        return (*ADMIN, self.admin_token, self.guest_token, self.channel_token)

    def headers(self, persona: str, channel: str | None) -> dict[str, str]:
        headers = {}
        if persona != "nobody":
            headers["authorization"] = f"Bearer {self.admin_token if persona == 'admin' else self.guest_token}"
        if channel is not None:
            headers["channel-token"] = self.channel_token if channel == "default" else channel
        return headers

    async def send(self, method: str, **request: Any) -> httpx.Response:
        # The cookie jar would carry a session from one example into the next: each persona is explicit.
        self.http.cookies.clear()
        self.requests += 1
        try:
            response = await self.http.request(method, "/graphql", **request)
        except Exception as error:  # the ASGI transport re-raises what the app let escape: a 500 on a real server
            raise AssertionError(f"the app raised {type(error).__name__}: {error}") from error
        check_answer(response)
        self._count(response)
        return response

    def _count(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            self.outcomes[f"HTTP {response.status_code}"] += 1
            return
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if isinstance(body, dict):
            data = body.get("data")
            self.outcomes["data"] += sum(value is not None for value in data.values()) if isinstance(data, dict) else 0
            self.outcomes.update(error_codes(response))

    async def operation(self, document: str, persona: str, channel: str | None) -> httpx.Response:
        response = await self.send("POST", json={"query": document}, headers=self.headers(persona, channel))
        await self.repair_after(document, response)
        return response

    async def repair_after(self, document: str, response: httpx.Response) -> None:
        """Repair when a mutation that can end sessions or demote the superadmin succeeded at least in part."""
        if not any(word in document for word in DESTRUCTIVE) or response.status_code != 200:
            return
        data = response.json().get("data")
        if isinstance(data, dict) and any(value is not None for value in data.values()):
            await self.repair()

    async def repair(self) -> None:
        """Give the guest and the superadmin a working session again.

        A generated operation may have logged either out, deleted the superadmin, renamed them, changed
        their password or stripped the SuperAdmin role: all of it is put back as the bootstrap made it.
        """
        if await self._session_user(self.guest_token) is None:
            self.guest_token = await self._new_guest()
        if await self._is_superadmin(self.admin_token):
            return
        self.admin_token = await self._login_admin()
        if await self._is_superadmin(self.admin_token):
            return
        role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
        role.permissions = [permission.value for permission in Permission]
        await role.save()
        await role.channels.add(*await Channel.all())
        user = await User.filter(identifier=ADMIN[0]).first()
        if user is None:
            user = await User.create(identifier=ADMIN[0], verified=True)
        user.password_hash = await hash_password(ADMIN[1])
        user.verified = True
        await user.save()
        await user.roles.add(role)
        self.admin_token = await self._login_admin()
        assert await self._is_superadmin(self.admin_token), "the superadmin could not be restored"

    async def assert_healthy(self) -> None:
        self.http.cookies.clear()
        health = await self.http.get("/health")
        assert health.status_code == 200, health.text
        body = await self._graphql("mutation { createAnonymousSession { token user { id } } }")
        session = body["data"]["createAnonymousSession"]
        assert session["user"] is None and len(session["token"]) >= 43

    async def _graphql(self, document: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        self.http.cookies.clear()
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def _login_admin(self) -> str:
        """The new session's token; "" when the login failed."""
        body = await self._graphql(LOGIN_TOKEN, u=ADMIN[0], p=ADMIN[1])
        token: str = body["data"]["login"].get("token", "")
        return token

    async def _new_guest(self) -> str:
        body = await self._graphql("mutation { createAnonymousSession { token } }")
        token: str = body["data"]["createAnonymousSession"]["token"]
        return token

    async def _is_superadmin(self, token: str) -> bool:
        user = await self._session_user(token) if token else None
        held = [p for channel in user["channelPermissions"] for p in channel["permissions"]] if user else []
        return Permission.SuperAdmin.value in held

    async def _session_user(self, token: str) -> dict[str, Any] | Literal[False] | None:
        """None when the token names no session; the user (False for a guest) otherwise."""
        body = await self._graphql("{ activeSession { user { channelPermissions { permissions } } } }", token=token)
        session = body["data"]["activeSession"]
        return None if session is None else (session["user"] or False)


@pytest.fixture
async def fuzzer(
    make_client: MakeClient,
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Fuzzer]:
    """The app started once for the test; afterwards it must be healthy and have logged no error."""
    caplog.set_level(logging.WARNING)
    # A login of an unknown user verifies against a dummy hash made at import with production costs
    # (~0.1 s); generated logins are mostly of unknown users, so the dummy gets the tests' cheap costs.
    monkeypatch.setattr(passwords, "_DUMMY_HASH", passwords._hasher.hash("fuzz"))
    client: GraphQLClient = await make_client(make_settings(login_rate_limit=None))
    fuzzer = Fuzzer(client)
    await fuzzer.start()
    yield fuzzer
    await fuzzer.assert_healthy()
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], errors


async def run_hypothesis(test: Callable[[], None]) -> None:
    """Run a `@given` test in a worker thread, so its examples can call back into this event loop."""
    await anyio.to_thread.run_sync(test)


# -- Strategies (built once per test: building them inside a draw costs more than the request) --------


def long_text() -> st.SearchStrategy[str]:
    return st.builds(lambda char, count: char * count, st.characters(codec="utf-8"), st.integers(60, 5000))


def text_values(known: Iterable[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=40), st.sampled_from((*known, *HOSTILE_TEXT)), long_text())


def id_values() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(1, 6).map(str), st.sampled_from(HOSTILE_IDS), st.text(max_size=20))


def custom_scalars(fuzzer: Fuzzer) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """IDs that name real rows as often as hostile ones; strings that are credentials, tokens or junk."""
    ids = id_values().map(nodes.String) | st.integers(-(2**31), 2**31 - 1).map(nodes.Int)
    return {"ID": ids, "String": text_values(fuzzer.known_text()).map(nodes.String)}


def documents(fuzzer: Fuzzer, mode: Mode) -> st.SearchStrategy[str]:
    """Whole-schema documents (several root fields, so a login may precede an admin mutation), and
    single-field ones, which Hypothesis-GraphQL generates several times faster."""
    scalars = custom_scalars(fuzzer)
    generated: list[st.SearchStrategy[str]] = []
    for root, generate in ((SCHEMA.query_type, queries), (SCHEMA.mutation_type, mutations)):
        assert root is not None
        # NEGATIVE documents violate a required argument: fields with only optional ones have none to violate.
        names = [name for name, field in root.fields.items() if mode is Mode.POSITIVE or _required_args(field)]
        generated.append(generate(SDL, custom_scalars=scalars, mode=mode))
        generated.extend(generate(SDL, fields=[name], custom_scalars=scalars, mode=mode) for name in names)
    return st.one_of(generated)


def _required_args(field: graphql.GraphQLField) -> bool:
    return any(isinstance(argument.type, graphql.GraphQLNonNull) for argument in field.args.values())


def personas() -> st.SearchStrategy[str]:
    return st.sampled_from(PERSONAS)


def channels() -> st.SearchStrategy[str | None]:
    return st.sampled_from((None, None, None, "default", "no-such-channel"))


INPUT_KEYS = sorted(
    {
        name
        for type_ in SCHEMA.type_map.values()
        if isinstance(type_, graphql.GraphQLInputObjectType)
        for name in type_.fields
    }
)
PERMISSION_NAMES = tuple(permission.value for permission in Permission)
SURROGATES = ("\ud800", "a\udfff", "\udbff\udbff", "\udc00x")
NUMBERS = (0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 2**64, 10**30, -(10**30), 1e300, -0.0, 0.5)


def json_text(known: Iterable[str]) -> st.SearchStrategy[str]:
    """Text as JSON can carry it: also lone surrogates (escaped as \\ud800), which no GraphQL literal can."""
    with_surrogate = st.builds(
        "".join, st.tuples(st.text(max_size=5), st.sampled_from(SURROGATES), st.text(max_size=5))
    )
    return st.one_of(text_values(known), with_surrogate)


def json_values(known: Iterable[str]) -> st.SearchStrategy[Any]:
    """Any JSON, biased towards the shapes our inputs take and the values that break parsers and databases."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from(NUMBERS),
        st.floats(allow_nan=False, allow_infinity=False),
        json_text(known),
        id_values(),
        st.sampled_from(PERMISSION_NAMES),
    )
    keys = st.sampled_from(INPUT_KEYS) | st.text(max_size=10)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
        max_leaves=12,
    )


def typed_values(type_: graphql.GraphQLInputType, known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Values of the right shape for `type_` (with hostile contents), so most reach the resolvers."""
    nullable = not isinstance(type_, graphql.GraphQLNonNull)
    if isinstance(type_, graphql.GraphQLNonNull):
        type_ = type_.of_type
    strategy: st.SearchStrategy[Any]
    if isinstance(type_, graphql.GraphQLList):
        strategy = st.lists(typed_values(type_.of_type, known), max_size=4)
    elif isinstance(type_, graphql.GraphQLInputObjectType):
        required = {
            name: typed_values(field.type, known)
            for name, field in type_.fields.items()
            if graphql.is_required_input_field(field)
        }
        optional = {
            name: typed_values(field.type, known) for name, field in type_.fields.items() if name not in required
        }
        strategy = st.fixed_dictionaries(required, optional=optional)
    elif isinstance(type_, graphql.GraphQLEnumType):
        strategy = st.sampled_from(tuple(type_.values))
    elif type_.name == "Int":
        strategy = st.integers(-(2**31), 2**31 - 1) | st.sampled_from(NUMBERS)
    elif type_.name == "Boolean":
        strategy = st.booleans()
    elif type_.name == "ID":
        strategy = id_values() | st.integers(-(2**31), 2**31 - 1)
    else:
        strategy = json_text(known)
    return strategy | st.none() if nullable else strategy


def operation_with_variables(root: graphql.GraphQLObjectType, name: str) -> str:
    """`mutation($a: ID!, ...) { field(a: $a, ...) { __typename } }` for one root field."""
    field = root.fields[name]
    kind = "mutation" if root is SCHEMA.mutation_type else "query"
    definitions = ", ".join(f"${argument}: {spec.type}" for argument, spec in field.args.items())
    arguments = ", ".join(f"{argument}: ${argument}" for argument in field.args)
    leaf = graphql.is_leaf_type(graphql.get_named_type(field.type))
    return (
        f"{kind}{f'({definitions})' if definitions else ''} "
        f"{{ {name}{f'({arguments})' if arguments else ''}{'' if leaf else ' { __typename }'} }}"
    )


def operations_with_variables(fuzzer: Fuzzer) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """One root field per operation, its arguments as variables: well-shaped (hostile contents) or any JSON."""
    known = fuzzer.known_text()
    anything = json_values(known)
    operations = []
    for root in (SCHEMA.query_type, SCHEMA.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            values = {arg: typed_values(spec.type, known) | anything for arg, spec in field.args.items()}
            variables = st.fixed_dictionaries({}, optional=values)
            operations.append(st.tuples(st.just(operation_with_variables(root, name)), variables))
    return st.one_of(operations)


CONTENT_TYPES = (
    None, "application/json", "application/json; charset=latin-1", "application/graphql", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x", "*/*", "\x00",
)  # fmt: skip
JSON = "application/json"
OPERATION_KEYS = ("query", "variables", "operationName", "extensions")
SAMPLE_QUERIES = ("{ activeChannel { id } }", "query A { activeSession { id } } query B { activeChannel { id } }")
#: What a body's query, variables, operationName or extensions may hold besides any JSON: names Strawberry echoes.
FIELD_VALUES = (*SAMPLE_QUERIES, "A", "B", *SURROGATES, "A\x00")


def raw_requests(fuzzer: Fuzzer) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Any method, content type and body: bytes, JSON that is no operation, or an operation's keys filled with junk.

    Most are JSON POSTs shaped like an operation, the only ones that get past the content-type check
    and the body parsing to Strawberry's own checks of the operation (and its echo of operationName).
    """
    known = fuzzer.known_text()
    anything = json_values(known)
    field_values = st.sampled_from(FIELD_VALUES) | anything
    queries_ = st.sampled_from((True, True, True, False)).flatmap(
        lambda document: st.sampled_from(SAMPLE_QUERIES) if document else field_values
    )
    # Variables and extensions mostly well-formed, or Strawberry refuses the body before the operation name.
    objects: st.SearchStrategy[Any] = st.sampled_from(({}, None, {}, None)) | field_values
    operation_shaped = st.fixed_dictionaries(
        {"query": queries_},
        optional={"variables": objects, "operationName": field_values, "extensions": objects},
    ).map(lambda value: json.dumps(value).encode())
    other_bodies = st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        anything.map(lambda value: json.dumps(value).encode()),
    )
    content_types = st.sampled_from(CONTENT_TYPES).map(lambda value: {} if value is None else {"content-type": value})
    posts = st.builds(
        lambda method, body, headers: (method, {"content": body, "headers": headers}),
        st.sampled_from(("POST", "POST", "POST", "POST", "PUT", "DELETE", "PATCH")),
        st.sampled_from((True, True, False)).flatmap(lambda shaped: operation_shaped if shaped else other_bodies),
        st.sampled_from((True, False)).flatmap(
            lambda json_: st.just({"content-type": JSON}) if json_ else content_types
        ),
    )
    gets = st.builds(
        lambda params, accept: ("GET", {"params": params, "headers": {"accept": accept}}),
        # Short values: httpx refuses to build a URL longer than 64 KiB.
        st.dictionaries(
            st.sampled_from(OPERATION_KEYS), st.text(max_size=200) | st.sampled_from(SAMPLE_QUERIES), max_size=3
        ),
        st.sampled_from(("application/json", "text/html", "*/*", "")),
    )
    return st.sampled_from((True, True, True, False)).flatmap(lambda post: posts if post else gets)


# -- Tests ------------------------------------------------------------------------------------------


async def test_generated_valid_operations_get_coded_answers(fuzzer: Fuzzer) -> None:
    """Schema-valid queries and mutations with random arguments, as nobody, a guest and the superadmin."""

    @fuzz_settings(400)
    @given(document=documents(fuzzer, Mode.POSITIVE), persona=personas(), channel=channels())
    def property(document: str, persona: str, channel: str | None) -> None:
        response = fuzzer.run(fuzzer.operation, document, persona, channel)
        if channel is None or channel == "default":
            assert response.status_code == 200, response.text[:500]

    await run_hypothesis(property)
    assert fuzzer.requests >= examples(400)
    print(f"valid operations: {fuzzer.outcomes}")
    # Both sides of the permission checks were reached: answers, refusals and rejected arguments.
    assert {"data", "FORBIDDEN", "BAD_USER_INPUT", "ENTITY_NOT_FOUND"} <= set(fuzzer.outcomes), fuzzer.outcomes


async def test_generated_invalid_operations_get_bad_user_input(fuzzer: Fuzzer) -> None:
    """Queries and mutations with one schema violation each: every one must fail as the client's input."""

    @fuzz_settings(300)
    @given(document=documents(fuzzer, Mode.NEGATIVE), persona=personas())
    def property(document: str, persona: str) -> None:
        response = fuzzer.run(fuzzer.operation, document, persona, None)
        codes = error_codes(response)
        assert response.status_code in (200, 400), response.text[:500]
        assert codes and set(codes) <= CLIENT_CODES, response.text[:500]

    await run_hypothesis(property)
    assert fuzzer.requests >= examples(300)
    print(f"invalid operations: {fuzzer.outcomes}")


async def test_random_variables_get_coded_answers(fuzzer: Fuzzer) -> None:
    """Every root field with variables of any JSON shape: huge numbers, lone surrogates, NUL, wrong types."""

    @fuzz_settings(500)
    @given(operation=operations_with_variables(fuzzer), persona=personas())
    def property(operation: tuple[str, dict[str, Any]], persona: str) -> None:
        document, variables = operation
        # json.dumps escapes lone surrogates (ensure_ascii), which httpx's own encoder cannot send.
        content = json.dumps({"query": document, "variables": variables}).encode()
        headers = {"content-type": "application/json", **fuzzer.headers(persona, None)}
        response = fuzzer.run(fuzzer.send, "POST", content=content, headers=headers)
        fuzzer.run(fuzzer.repair_after, document, response)

    await run_hypothesis(property)
    assert fuzzer.requests >= examples(500)
    print(f"variables: {fuzzer.outcomes}")
    assert {"data", "FORBIDDEN", "BAD_USER_INPUT", "ENTITY_NOT_FOUND"} <= set(fuzzer.outcomes), fuzzer.outcomes


async def test_malformed_http_requests_get_4xx(fuzzer: Fuzzer) -> None:
    """Raw bytes, wrong content types and methods, JSON that is no operation: a 4xx or coded errors, never a 5xx."""

    @fuzz_settings(500)
    @given(request=raw_requests(fuzzer))
    def property(request: tuple[str, dict[str, Any]]) -> None:
        method, arguments = request
        fuzzer.run(fuzzer.send, method, **arguments)

    await run_hypothesis(property)
    assert fuzzer.requests >= examples(500)
    print(f"malformed requests: {fuzzer.outcomes}")
