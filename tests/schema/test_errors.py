"""Error codes and messages, HTTP-level refusals, and the GraphiQL page."""

from __future__ import annotations

import pytest

from server.graphql_http import JSON
from tests.graphql import GraphQLClient, refusal
from tests.schema.helpers import FORBIDDEN_MESSAGE, add_item, admin_token, anonymous_token, create_user, login_token

SERIALIZE = "query Serialize($token: String!) { serializeSession(token: $token) { id } }"
SET_ACTIVE_ORDER = "mutation SetOrder($id: ID!) { setActiveOrder(orderId: $id) { id } }"
SET_ACTIVE_CHANNEL = "mutation SetChannel($id: ID!) { setActiveChannel(channelId: $id) { id } }"
DELETE_BY_USER = "mutation DeleteByUser($id: ID!) { deleteSessionsByUser(userId: $id) }"
DELETE_BY_ORDER = "mutation DeleteByOrder($id: ID!) { deleteSessionsByActiveOrderId(activeOrderId: $id) }"
CLEAN_EXPIRED = "mutation Clean($size: Int!) { cleanExpiredSessions(batchSize: $size) }"
CREATE_CHANNEL = "mutation Create($code: String!) { createChannel(input: {code: $code}) { id } }"
CREATE_ROLE = 'mutation Role($ids: [ID!]!) { createRole(input: {code: "r", permissions: [], channelIds: $ids}) { id } }'
IMPERSONATE = (
    'mutation Imp($id: ID!) { createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "x") { id } }'
)
ADD_ITEM_RAW = 'mutation Add($quantity: Int!) { addItemToOrder(productVariantId: "v1", quantity: $quantity) { id } }'
ACTIVE_CHANNEL = "{ activeChannel { code } }"
OVERFLOW_IDS = ["2147483648", "9223372036854775808", "0"]


async def test_every_forbidden_denial_has_the_same_message(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_user(api, admin, "alice")
    alice = await login_token(api, "alice", "pw-alice")
    guest = await anonymous_token(api)
    admin_order = (await add_item(api, "v1", 1, token=admin)).data
    order_id = admin_order["addItemToOrder"]["id"] if admin_order else ""
    denials = [
        await api.execute(SERIALIZE, {"token": guest}, token=guest),
        await api.execute(SERIALIZE, {"token": guest}),
        await api.execute(SET_ACTIVE_ORDER, {"id": "1"}),
        await api.execute(SET_ACTIVE_ORDER, {"id": order_id}, token=alice),
        await api.execute(SET_ACTIVE_CHANNEL, {"id": "1"}),
        await api.execute(DELETE_BY_USER, {"id": "1"}, token=alice),
        await api.execute(DELETE_BY_USER, {"id": "1"}, token=guest),
        await api.execute(DELETE_BY_ORDER, {"id": order_id}, token=alice),
        await api.execute(CLEAN_EXPIRED, {"size": 10}, token=guest),
        await api.execute(CREATE_CHANNEL, {"code": "uk"}, token=alice),
        await api.execute(IMPERSONATE, {"id": "1"}, token=alice),
    ]
    assert [(r.codes, [e["message"] for e in r.errors or []]) for r in denials] == [
        (["FORBIDDEN"], [FORBIDDEN_MESSAGE])
    ] * len(denials)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (ADD_ITEM_RAW, {"quantity": "many"}),
        (ADD_ITEM_RAW, {}),
        (ADD_ITEM_RAW, {"quantity": 2**31}),
        ('mutation { addItemToOrder(productVariantId: "v1") { id } }', {}),
        (SET_ACTIVE_ORDER, {"id": None}),
        ("{ a: activeChannel { code } a: activeSession { id } }", {}),
        ("{ activeChannel }", {}),
    ],
    ids=["wrong-type", "missing-variable", "int-overflow", "missing-argument", "null", "conflict", "no-selection"],
)
async def test_validation_errors_are_bad_user_input(
    api: GraphQLClient, query: str, variables: dict[str, object]
) -> None:
    result = await api.execute(query, variables)
    assert (result.response.status_code in (200, 400), result.data, result.codes) == (True, None, ["BAD_USER_INPUT"])


async def test_syntax_error_is_bad_user_input(api: GraphQLClient) -> None:
    result = await api.execute("query {")
    assert (result.response.status_code, result.data, result.codes) == (200, None, ["BAD_USER_INPUT"])


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2", b"\xff\xfe"],
    ids=["broken", "empty", "truncated", "binary"],
)
async def test_malformed_json_body_is_http_400(api: GraphQLClient, content: bytes) -> None:
    response = await api.http.post("/graphql", content=content, headers={"content-type": "application/json"})
    expected = refusal("Unable to parse request body as JSON", "BAD_REQUEST")
    assert (response.status_code, response.headers["content-type"], response.json()) == (400, JSON, expected)


async def test_unknown_field_is_an_error_not_a_500(api: GraphQLClient) -> None:
    result = await api.execute("query { nope }")
    assert (result.response.status_code, result.data, result.codes) == (200, None, ["BAD_USER_INPUT"])
    assert result.errors is not None and "nope" in result.errors[0]["message"]


@pytest.mark.parametrize("entity_id", OVERFLOW_IDS)
async def test_out_of_range_ids_name_nothing(api: GraphQLClient, entity_id: str) -> None:
    guest = await anonymous_token(api)
    results = [
        await api.execute(SET_ACTIVE_CHANNEL, {"id": entity_id}, token=guest),
        await api.execute(SET_ACTIVE_ORDER, {"id": entity_id}, token=guest),
    ]
    admin = await admin_token(api)
    results += [
        await api.execute(DELETE_BY_USER, {"id": entity_id}, token=admin),
        await api.execute(DELETE_BY_ORDER, {"id": entity_id}, token=admin),
        await api.execute(CREATE_ROLE, {"ids": [entity_id]}, token=admin),
        await api.execute(IMPERSONATE, {"id": entity_id}, token=admin),
    ]
    assert [(r.data, r.codes) for r in results] == [(None, ["ENTITY_NOT_FOUND"])] * len(results)


@pytest.mark.parametrize("entity_id", ["abc", "1.5", "", "１", "1e3"])
async def test_malformed_ids_are_bad_user_input(api: GraphQLClient, entity_id: str) -> None:
    result = await api.execute(SET_ACTIVE_CHANNEL, {"id": entity_id}, token=await anonymous_token(api))
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_no_error_message_leaks_a_traceback_or_sql(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    guest = await anonymous_token(api)
    results = [
        await api.execute(CREATE_ROLE, {"ids": ["1", "99999999999"]}, token=admin),
        await api.execute(CREATE_CHANNEL, {"code": "__default_channel__"}, token=admin),
        await api.execute(CREATE_CHANNEL, {"code": "x" * 10_000}, token=admin),
        await api.execute('mutation { createUser(input: {identifier: "superadmin"}) { id } }', token=admin),
        await api.execute(SET_ACTIVE_ORDER, {"id": "'; DROP TABLE sessions; --"}, token=guest),
        await api.execute(ADD_ITEM_RAW, {"quantity": -5}, token=guest),
        await api.execute('mutation { addItemToOrder(productVariantId: "' + "v" * 500 + '", quantity: 1) { id } }'),
        await api.execute(CLEAN_EXPIRED, {"size": 10**9}, token=admin),
    ]
    messages = [error["message"] for result in results for error in result.errors or []]
    assert len(messages) == len(results)
    leaks = ("Traceback", 'File "', "SELECT", "INSERT", "UPDATE ", "sqlite", "IntegrityError", "tortoise")
    assert [m for m in messages if any(leak.lower() in m.lower() for leak in leaks)] == []
    assert "INTERNAL_SERVER_ERROR" not in {code for result in results for code in result.codes}


async def test_get_with_accept_html_serves_graphiql(api: GraphQLClient) -> None:
    response = await api.http.get("/graphql", headers={"accept": "text/html"})
    assert (response.status_code, response.headers["content-type"].split(";")[0]) == (200, "text/html")
    assert "graphiql" in response.text.lower()


async def test_query_via_get_is_served(api: GraphQLClient) -> None:
    response = await api.http.get("/graphql", params={"query": ACTIVE_CHANNEL})
    assert (response.status_code, response.json()) == (
        200,
        {"data": {"activeChannel": {"code": "__default_channel__"}}},
    )


async def test_mutation_via_get_is_refused(api: GraphQLClient) -> None:
    response = await api.http.get("/graphql", params={"query": "mutation { createAnonymousSession { id } }"})
    expected = refusal("mutations are not allowed when using GET", "METHOD_NOT_ALLOWED")
    assert (response.status_code, response.headers["allow"], response.json()) == (405, "POST", expected)
    assert "auth-token" not in response.headers
