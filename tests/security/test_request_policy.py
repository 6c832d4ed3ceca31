"""Where the request policy (server/request_policy.py) applies: the /graphql route only, after its method
check and inside CORS, so a refusal still carries the CORS headers of an allowed origin."""

from __future__ import annotations

from server.settings import Settings
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient, refusal

SHOP = "https://shop.example"
ANONYMOUS = "mutation { createAnonymousSession { token } }"


async def test_health_is_outside_the_policy(make_client: ClientFactory, settings: Settings) -> None:
    client = await make_client(settings)
    await client.ok(ANONYMOUS)
    get = await client.http.get("/health", params={"query": "{ __typename }"})
    post = await client.http.post("/health", content="{}", headers={"content-type": "text/plain"})
    assert [(r.status_code, r.json()) for r in (get, post)] == [
        (200, {"status": "ok", "database": "ok"}),
        (405, refusal("Method Not Allowed", "METHOD_NOT_ALLOWED")),
    ]
    assert set(post.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_other_methods_on_graphql_are_405_before_the_policy(client: GraphQLClient) -> None:
    response = await client.http.put("/graphql", content="{}", headers={"content-type": "text/plain"})
    assert (response.status_code, response.json()) == (405, refusal("Method Not Allowed", "METHOD_NOT_ALLOWED"))
    assert set(response.headers["allow"].split(", ")) == {"HEAD", "GET", "POST"}


async def test_a_refusal_carries_the_cors_headers(make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    client = await make_client(make_settings(cors_allow_origins=(SHOP,)))
    response = await client.http.post("/graphql", content="{}", headers={"origin": SHOP, "content-type": "text/plain"})
    assert (response.status_code, response.headers["access-control-allow-origin"]) == (415, SHOP)
