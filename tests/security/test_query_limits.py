"""MAX_QUERY_TOKENS, MAX_QUERY_ALIASES, MAX_QUERY_DEPTH, bounded document caches and no batching.

Abusive documents are refused before execution: the refused mutations below would have created a
session, and no token comes back.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import pytest
from strawberry.extensions import ValidationCache

from schema.compiled.documents import DocumentCache
from schema.schema import DOCUMENT_CACHE_SIZE, build_schema
from server.settings import Settings
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult, refusal

DEEP_SESSION = "{ activeSession { user { channelPermissions { id } } } }"  # `id` is at depth 3


def fields(count: int, alias: str = "") -> str:
    """`count` top-level `__typename` fields, aliased a1, a2, ... when `alias` is given."""
    return " ".join(f"{alias}{n}: __typename" if alias else "__typename" for n in range(1, count + 1))


def assert_refused(result: GraphQLResult, message: str) -> None:
    """Refused before execution: HTTP 200, no data, one BAD_USER_INPUT error, and no token handed out."""
    assert (result.response.status_code, result.data, result.codes) == (200, None, ["BAD_USER_INPUT"])
    assert result.errors is not None and message in result.errors[0]["message"]
    assert ("auth-token" in result.response.headers, "set-cookie" in result.response.headers) == (False, False)


async def test_default_token_limit_refuses_a_mutation_of_2001_tokens(client: GraphQLClient) -> None:
    # mutation { createAnonymousSession { id } ...  }: 7 tokens plus one per __typename
    refused = await client.execute("mutation { createAnonymousSession { id } " + fields(1995) + " }")
    assert_refused(refused, "Document contains more than 2000 tokens")
    served = await client.execute("mutation { createAnonymousSession { id } " + fields(10) + " }")
    assert (served.errors, "auth-token" in served.response.headers) == (None, True)


async def test_token_limit_comes_from_the_settings(make_settings: SettingsFactory, make_client: ClientFactory) -> None:
    client: GraphQLClient = await make_client(make_settings(max_query_tokens=50))
    assert (await client.execute("{ " + fields(48) + " }")).errors is None  # 50 tokens
    assert_refused(await client.execute("{ " + fields(49) + " }"), "Document contains more than 50 tokens")


async def test_default_alias_limit_refuses_16_aliased_mutations(client: GraphQLClient) -> None:
    many = " ".join(f"s{n}: createAnonymousSession {{ id }}" for n in range(1, 17))
    assert_refused(await client.execute(f"mutation {{ {many} }}"), "16 aliases found. Allowed: 15")
    assert (await client.execute("{ " + fields(15, alias="a") + " }")).errors is None


async def test_aliases_hidden_in_fragments_are_counted(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client: GraphQLClient = await make_client(make_settings(max_query_aliases=3))
    query = "{ activeChannel { ...C } a: activeChannel { ...C } } fragment C on Channel { b: id c: code }"
    assert_refused(await client.execute(query), "5 aliases found. Allowed: 3")  # 1, plus 2 per spread


async def test_depth_limit_comes_from_the_settings(make_settings: SettingsFactory, make_client: ClientFactory) -> None:
    client: GraphQLClient = await make_client(make_settings(max_query_depth=2))
    assert await client.ok("{ activeSession { user { id } } }") == {"activeSession": None}
    assert_refused(await client.execute(DEEP_SESSION), "exceeds maximum operation depth of 2")
    mutation = "mutation { createAnonymousSession { user { channelPermissions { id } } } }"
    assert_refused(await client.execute(mutation), "exceeds maximum operation depth of 2")


async def test_depth_hidden_in_fragments_is_counted(make_settings: SettingsFactory, make_client: ClientFactory) -> None:
    client: GraphQLClient = await make_client(make_settings(max_query_depth=2))
    query = (
        "{ activeSession { ...S } } fragment S on CachedSession { user { ...U } }"
        " fragment U on CachedSessionUser { channelPermissions { id } }"
    )
    assert_refused(await client.execute(query), "exceeds maximum operation depth of 2")


async def test_default_depth_limit_is_10(client: GraphQLClient) -> None:
    deep = "{ activeSession " + "{ user " * 10 + "{ id" + " }" * 12
    result = await client.execute(deep)
    assert (result.data, set(result.codes)) == (None, {"BAD_USER_INPUT"})
    assert result.errors is not None
    assert "'anonymous' exceeds maximum operation depth of 10" in [error["message"] for error in result.errors]


async def test_document_caches_are_bounded_and_reused(
    make_client: ClientFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[DocumentCache] = []

    def recorded(maxsize: int) -> DocumentCache:
        made.append(DocumentCache(maxsize))
        return made[-1]

    monkeypatch.setattr("schema.schema.DocumentCache", recorded)
    client = await make_client(settings)
    [documents] = made  # the app's cache of parsed documents and their plans
    extensions = [factory() for factory in build_schema(Settings()).extensions]
    validator = cast(
        "functools._lru_cache_wrapper[Any]",
        next(e for e in extensions if isinstance(e, ValidationCache)).cached_validate_document,
    )
    assert (documents.maxsize, validator.cache_info().maxsize) == (DOCUMENT_CACHE_SIZE, DOCUMENT_CACHE_SIZE)

    # A flood of distinct documents does not grow the caches past their bound...
    for n in range(DOCUMENT_CACHE_SIZE + 20):
        assert (await client.execute(f"query Flood{n} {{ __typename }}")).errors is None
    assert len(documents) == validator.cache_info().currsize == DOCUMENT_CACHE_SIZE
    assert documents.get("query Flood0 { __typename }") is None  # the oldest went first
    # ...and a repeated document is parsed and validated once: the limit rules are the same classes every request.
    repeated = "query Repeated { activeChannel { code } }"
    await client.ok(repeated)
    parsed, misses = documents.get(repeated), validator.cache_info().misses
    await client.ok(repeated)
    assert parsed is not None and documents.get(repeated) is parsed
    assert validator.cache_info().misses == misses


async def test_batched_operations_are_refused(client: GraphQLClient) -> None:
    batch = [{"query": "mutation { createAnonymousSession { id } }"}] * 2
    response = await client.http.post("/graphql", json=batch)
    assert (response.status_code, response.json()) == (400, refusal("Batching is not enabled", "BAD_REQUEST"))
    assert ("auth-token" in response.headers, "set-cookie" in response.headers) == (False, False)
