"""Each GraphQL feature through the real app: the compiled path answers it, byte for byte as Strawberry
(body, status and headers, cookies included), and what it leaves to Strawberry gets Strawberry's
answer: introspection, limits, the introspection switch, bad variables, unknown operations. Plain
requests of compiled operations are answered by the lean HTTP path; other media types go through
Strawberry's view, from the plan all the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.schema.twin import Step, TwinReplays, sqlite_settings
from tests.schema.twin import twins as twins

SESSION = """
fragment Session on CachedSession {
  cacheExpiry id token expires activeOrderId authenticationStrategy activeChannelId
  user { ...User }
}
fragment User on CachedSessionUser { id identifier verified channelPermissions { id token code permissions } }
"""
LOGIN = """mutation ($u: String!, $p: String!, $remember: Boolean) {
  login(username: $u, password: $p, rememberMe: $remember) {
    __typename
    ... on CachedSession { id token user { identifier } }
    ... on ErrorResult { errorCode message }
    ... on InvalidCredentialsError { authenticationError }
  }
}"""

#: feature -> script; every step of it must run from a plan
COMPILED: dict[str, list[Step]] = {
    "whole CachedSession by token, named fragments": [
        Step("nobody", "query ($t: String!) { sessionFromToken(token: $t) { ...Session } }" + SESSION, {"t": "tok"}),
        Step("superadmin", "query { activeSession { ...Session } }" + SESSION),
    ],
    "the cached session of the request": [
        Step(caller, "{ activeSession { id expires user { identifier } } }") for caller in ("guest", "user", "nobody")
    ],
    "aliases and __typename": [
        Step("user", "{ __typename a: activeSession { x: id y: token __typename } b: activeChannel { c: code } }"),
    ],
    "inline fragments on the login union, cookies set by the resolver": [
        Step("nobody", LOGIN, {"u": "superadmin", "p": "superadmin", "remember": True}),
        Step("nobody", LOGIN, {"u": "superadmin", "p": "wrong"}),
        Step("nobody", LOGIN, {"u": "nobody-at-all", "p": "x"}),
    ],
    "variables with defaults": [
        Step("nobody", 'query ($t: String = "nope") { sessionFromToken(token: $t) { id } }'),
        Step("superadmin", 'query ($t: String = "nope") { sessionFromToken(token: $t) { id } }', {"t": None}),
    ],
    "skip and include": [
        Step("user", q, {"yes": yes})
        for q in ["query ($yes: Boolean!) { activeSession { id @skip(if: $yes) ... @include(if: $yes) { token } } }"]
        for yes in (True, False)
    ],
    "nullable, non-null, lists, enums and custom scalars": [
        Step("superadmin", "{ activeSession { expires cacheExpiry user { channelPermissions { permissions } } } }"),
        Step("nobody", "{ activeChannel { id code token } activeOrder { id lines { quantity } } }"),
    ],
    "permission errors, nullable and non-null": [
        Step("nobody", '{ serializeSession(token: "x") { id } activeChannel { code } }'),
        Step("guest", 'mutation { createChannel(input: {code: "c"}) { id } }'),
        Step("nobody", "mutation { unsetActiveOrder { id } }"),
    ],
    "coded service errors": [
        Step("superadmin", 'mutation { setActiveChannel(channelId: "999") { id } }'),
        Step("superadmin", 'mutation { deleteSessionsByActiveOrderId(activeOrderId: "not a number") }'),
    ],
    "mutations one after the other, guest session created on demand": [
        Step("nobody", "mutation { a: createAnonymousSession { id token } b: createAnonymousSession { id } }"),
        Step("nobody", 'mutation { addItemToOrder(productVariantId: "7", quantity: 2) { code lines { quantity } } }'),
        Step("superadmin", "mutation { logout { success } }"),
    ],
    "an operation picked by name": [
        Step("guest", "query A { activeChannel { code } } query B { activeSession { id } }", None, "B"),
    ],
    "GET queries, variables and operation name in the query string": [
        Step("user", "query Q($t: String!) { sessionFromToken(token: $t) { id } activeSession { id } }", {"t": "x"}),
        Step(
            "user",
            "query Q($t: String!) { sessionFromToken(token: $t) { id } activeSession { id } }",
            {"t": "x"},
            "Q",
            "GET",
        ),
        Step("guest", "query A { activeChannel { code } } query B { activeSession { id } }", None, "B", "GET"),
        Step("superadmin", "{ activeSession { id } }", None, None, "GET", "*/*"),
        Step("nobody", "{ activeChannel { code } }", None, None, "GET", "application/json"),
    ],
}

#: compiled, but left to Strawberry's view by the lean HTTP path (its plan still runs)
VIEW_NEGOTIATES: dict[str, list[Step]] = {
    "another media type accepted": [
        Step("user", "{ activeSession { id } }", accept="application/graphql-response+json"),
        Step("user", "{ activeSession { id } }", accept="application/graphql-response+json, application/json"),
        Step("nobody", "{ activeChannel { code } }", None, None, "GET", "text/html, */*"),
    ],
}

#: what stays Strawberry's: the compiled path must not answer, and the answers must still agree
FALLBACKS: dict[str, list[Step]] = {
    "introspection": [Step("nobody", '{ __schema { queryType { name } } __type(name: "Query") { name } }')],
    "a syntax error": [Step("nobody", "{ activeSession { id }")],
    "a validation error": [Step("nobody", "{ activeSession { nope } }")],
    "too deep": [Step("nobody", "{ activeSession { user { channelPermissions { id } } } }" + "{ a " * 12)],
    "too many aliases": [Step("nobody", "{ " + " ".join(f"a{n}: activeChannel {{ id }}" for n in range(16)) + " }")],
    "variables that do not coerce": [Step("nobody", "query ($t: String!) { sessionFromToken(token: $t) { id } }")],
    "an unknown operation name": [Step("nobody", "query A { activeChannel { id } }", None, "B")],
    "several operations, no name": [
        Step("nobody", "query A { activeChannel { id } } query B { activeSession { id } }")
    ],
    "a mutation by GET": [Step("nobody", "mutation { createAnonymousSession { id } }", method="GET")],
}


@pytest.mark.parametrize("feature", COMPILED)
async def test_compiled_features_answer_as_strawberry(twins: TwinReplays, feature: str) -> None:
    script = COMPILED[feature]
    strawberry = await twins.strawberry(script)
    compiled = await twins.compiled(script)

    assert compiled.answers == strawberry.answers
    assert compiled.compiled_steps == len(script)
    assert compiled.lean_steps == len(script)


@pytest.mark.parametrize("case", VIEW_NEGOTIATES)
async def test_other_media_types_go_through_strawberrys_view(twins: TwinReplays, case: str) -> None:
    script = VIEW_NEGOTIATES[case]
    strawberry = await twins.strawberry(script)
    compiled = await twins.compiled(script)

    assert compiled.answers == strawberry.answers
    assert compiled.compiled_steps == len(script)
    assert compiled.lean_steps == 0


@pytest.mark.parametrize("case", FALLBACKS)
async def test_what_falls_back_answers_as_strawberry(twins: TwinReplays, case: str) -> None:
    script = FALLBACKS[case]
    strawberry = await twins.strawberry(script)
    compiled = await twins.compiled(script)

    assert compiled.answers == strawberry.answers
    assert compiled.compiled_steps == 0
    assert compiled.lean_steps == 0


@pytest.mark.backends("sqlite")  # the switch is a validation rule, the same on every backend
async def test_the_introspection_switch_holds_for_typename_and_schema(
    tmp_path: Path, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With introspection off, `__typename` still compiles and `__schema` is still refused."""
    from tests.schema.twin import DeterministicRandomness

    def closed(**overrides: object) -> Settings:
        return make_settings(introspection=False, **overrides)

    async def reset(settings: Settings) -> None:
        Path(settings.database_url.removeprefix("sqlite://")).unlink(missing_ok=True)

    twins = TwinReplays(sqlite_settings(tmp_path, closed), reset, DeterministicRandomness(monkeypatch))
    script = [
        Step("nobody", "{ __typename activeChannel { __typename } }"),
        Step("nobody", "{ __schema { types { name } } }"),
    ]
    strawberry = await twins.strawberry(script)
    compiled = await twins.compiled(script)

    assert compiled.answers == strawberry.answers
    assert compiled.compiled_steps == 1
    assert b"introspection" in strawberry.answers[-1].body.lower()
