"""The lane for plain POSTs to /graphql (server/graphql_lane.py): what it takes skips Starlette's
routing and the route's request policy, and gets the answer the whole stack gives; what it does not
take, or what the lean path leaves to Strawberry, continues down the stack with its body intact."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.request_policy import RequestPolicy
from tests.graphql import GraphQLClient

pytestmark = pytest.mark.asyncio

QUERY = "query ($t: String!) { sessionFromToken(token: $t) { id token user { identifier } } }"
ACTIVE = "{ activeSession { id token } activeChannel { code } }"


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods of the requests that reached the GraphQL route (its request policy)."""
    seen: list[str] = []
    call = RequestPolicy.__call__

    async def counted(self: RequestPolicy, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["method"])
        await call(self, scope, receive, send)

    monkeypatch.setattr(RequestPolicy, "__call__", counted)
    return seen


async def post(
    api: GraphQLClient, body: bytes, content_type: str = "application/json", **headers: str
) -> httpx.Response:
    return await api.http.post("/graphql", content=body, headers={"content-type": content_type, **headers})


def body_of(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return httpx.Request("POST", "/", json={"query": query, "variables": variables or {}}).content


async def test_a_plain_post_skips_the_route_once_its_document_has_a_plan(api: GraphQLClient, routed: list[str]) -> None:
    session = (await api.ok("mutation { createAnonymousSession { token } }"))["createAnonymousSession"]
    routed.clear()
    body = body_of(QUERY, {"t": session["token"]})
    first = await post(api, body)  # the document's first use: Strawberry validates it, the body replayed
    assert routed == ["POST"]
    second = await post(api, body)
    assert routed == ["POST"], "the lane answered without the route"
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert second.json()["data"]["sessionFromToken"]["token"] == session["token"]
    assert second.headers["content-type"] == "application/json"
    assert second.headers["content-length"] == str(len(second.content))


@pytest.mark.parametrize(
    ("content_type", "headers"),
    [
        ("application/json; charset=utf-8", {}),
        ("Application/JSON", {}),
        ("application/json", {"accept": "application/graphql-response+json"}),
    ],
)
async def test_what_the_lane_leaves_gets_the_stack_and_the_same_data(
    api: GraphQLClient, routed: list[str], content_type: str, headers: dict[str, str]
) -> None:
    token = (await api.ok("mutation { createAnonymousSession { token } }"))["createAnonymousSession"]["token"]
    body = body_of(ACTIVE)
    await post(api, body, authorization=f"Bearer {token}")  # the plan exists from here on
    plain = await post(api, body, authorization=f"Bearer {token}")
    routed.clear()
    other = await post(api, body, content_type, authorization=f"Bearer {token}", **headers)
    assert routed == ["POST"]
    assert other.status_code == plain.status_code == 200
    assert other.json() == plain.json()
    assert plain.json()["data"]["activeSession"]["token"] == token


async def test_a_refusal_inside_the_lane_is_the_stacks_refusal(api: GraphQLClient, routed: list[str]) -> None:
    body = body_of(ACTIVE)
    await post(api, body)
    answers = []
    for content_type in ("application/json", "application/json; charset=utf-8"):  # the lane, then the stack
        routed.clear()
        answers.append(await post(api, body, content_type, **{"channel-token": "no-such-channel"}))
        assert routed == ([] if content_type == "application/json" else ["POST"])
    lane, stack = answers
    assert lane.status_code == stack.status_code == 400
    assert lane.json() == stack.json()
    assert lane.json()["errors"][0]["extensions"]["code"] == "CHANNEL_NOT_FOUND"


async def test_bodies_the_lean_path_refuses_go_down_the_stack(api: GraphQLClient, routed: list[str]) -> None:
    not_json = await post(api, b"{not json")
    batch = await post(api, b'[{"query": "{ activeChannel { code } }"}]')
    assert routed == ["POST", "POST"]
    assert not_json.status_code == 400
    assert batch.status_code == 400  # batches are off: the view's refusal
    assert batch.json()["errors"][0]["message"] == "Batching is not enabled"


async def test_the_body_size_limit_still_applies(api: GraphQLClient, routed: list[str]) -> None:
    huge = body_of("{ activeChannel { code } }", {"padding": "x" * 2_000_000})
    response = await post(api, huge)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert routed == []
