"""GRAPHIQL and INTROSPECTION can be switched off; the API keeps working without them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, refusal

SCHEMA = "{ __schema { queryType { name } } }"
INTROSPECTION_ATTEMPTS = [
    SCHEMA,
    '{ __type(name: "CachedSession") { fields { name } } }',
    "{ activeChannel { code } s: __schema { types { name } } }",
    "query { ...F } fragment F on Query { __schema { mutationType { name } } }",
    'query { ... on Query { __type(name: "Query") { name } } }',
]


async def test_graphiql_is_served_by_default(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers={"accept": "text/html"})
    assert (response.status_code, "graphiql" in response.text.lower()) == (200, True)


async def test_graphiql_off_serves_no_ide(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(graphiql=False))
    for accept in ("text/html", "*/*"):
        response = await client.http.get("/graphql", headers={"accept": accept})
        assert (response.status_code, response.json()) == (404, refusal("Not Found", "NOT_FOUND"))
    assert await client.ok("{ activeChannel { code } }") == {"activeChannel": {"code": "__default_channel__"}}
    query = await client.http.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "text/html"})
    assert (query.status_code, query.json()) == (200, {"data": {"__typename": "Query"}})


async def test_introspection_is_on_by_default(client: GraphQLClient) -> None:
    assert await client.ok(SCHEMA) == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.mark.parametrize("query", INTROSPECTION_ATTEMPTS, ids=["schema", "type", "aliased", "fragment", "inline"])
async def test_introspection_off_refuses_schema_and_type(
    make_settings: SettingsFactory, make_client: Any, query: str
) -> None:
    client: GraphQLClient = await make_client(make_settings(introspection=False))
    result = await client.execute(query)
    assert (result.response.status_code, result.data) == (200, None)
    assert result.codes and set(result.codes) == {"BAD_USER_INPUT"}
    assert result.errors is not None and "introspection has been disabled" in result.errors[0]["message"]


async def test_introspection_off_still_serves_queries_and_typename(
    make_settings: SettingsFactory, make_client: Any
) -> None:
    client: GraphQLClient = await make_client(make_settings(introspection=False))
    data = await client.ok("{ __typename activeChannel { __typename code } }")
    assert data == {"__typename": "Query", "activeChannel": {"__typename": "Channel", "code": "__default_channel__"}}
    token = (await client.ok("mutation { createAnonymousSession { token } }"))["createAnonymousSession"]["token"]
    assert await client.ok("{ activeSession { token } }") == {"activeSession": {"token": token}}


async def test_introspection_off_over_get(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(introspection=False))
    response = await client.http.get("/graphql", params={"query": SCHEMA})
    body = response.json()
    assert (response.status_code, body.get("data"), body["errors"][0]["extensions"]) == (
        200,
        None,
        {"code": "BAD_USER_INPUT"},
    )
