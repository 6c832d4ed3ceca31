"""Operations and helpers shared by the GraphQL API tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.graphql import GraphQLClient, GraphQLResult

SUPERADMIN = ("superadmin", "superadmin")
FORBIDDEN_MESSAGE = "You are not currently authorized to perform this action"

SESSION_FIELDS = """
fragment SessionFields on CachedSession {
  cacheExpiry
  id
  token
  expires
  activeOrderId
  authenticationStrategy
  activeChannelId
  user { id identifier verified channelPermissions { id token code permissions } }
}
"""

LOGIN = (
    """
mutation Login($username: String!, $password: String!, $rememberMe: Boolean) {
  login(username: $username, password: $password, rememberMe: $rememberMe) {
    __typename
    ... on CachedSession { ...SessionFields }
    ... on ErrorResult { errorCode message }
    ... on InvalidCredentialsError { authenticationError }
  }
}
"""
    + SESSION_FIELDS
)
REAUTHENTICATE = (
    """
mutation Reauthenticate($password: String!) {
  reauthenticate(password: $password) {
    __typename
    ... on CachedSession { ...SessionFields authenticatedAt impersonatorId }
    ... on ErrorResult { errorCode message }
  }
}
"""
    + SESSION_FIELDS
)
SESSION_EVENTS = """
query Events($userId: ID, $type: SessionEventType) {
  sessionEvents(userId: $userId, type: $type) { totalItems items { type sessionId userId actorId reason } }
}
"""
CREATE_ANONYMOUS_SESSION = "mutation Anonymous { createAnonymousSession { ...SessionFields } }" + SESSION_FIELDS
ACTIVE_SESSION = "query ActiveSession { activeSession { ...SessionFields } }" + SESSION_FIELDS
SESSION_FROM_TOKEN = (
    "query FromToken($token: String!) { sessionFromToken(token: $token) { ...SessionFields } }" + SESSION_FIELDS
)
CREATE_CHANNEL = """
mutation CreateChannel($input: CreateChannelInput!) { createChannel(input: $input) { id code token } }
"""
CREATE_ROLE = """
mutation CreateRole($input: CreateRoleInput!) {
  createRole(input: $input) { id code description permissions channels { id code token } }
}
"""
CREATE_USER = """
mutation CreateUser($input: CreateUserInput!) {
  createUser(input: $input) { id identifier verified lastLogin roles { id code } }
}
"""
ADD_ITEM = """
mutation AddItem($variant: ID!, $quantity: Int!) {
  addItemToOrder(productVariantId: $variant, quantity: $quantity) {
    id code active userId lines { productVariantId quantity }
  }
}
"""


@contextmanager
def detached(client: GraphQLClient) -> Iterator[None]:
    """Run with an empty cookie jar, then put the caller's cookies back (side sessions leave no cookie)."""
    jar = client.http.cookies.jar
    saved = list(jar)
    jar.clear()
    try:
        yield
    finally:
        jar.clear()
        for cookie in saved:
            jar.set_cookie(cookie)


async def login(client: GraphQLClient, username: str, password: str, **kwargs: Any) -> dict[str, Any]:
    data = await client.ok(LOGIN, {"username": username, "password": password}, **kwargs)
    result: dict[str, Any] = data["login"]
    return result


async def login_token(client: GraphQLClient, username: str, password: str, token: str | None = None) -> str:
    """Log in without leaving a cookie behind; the new session's token."""
    with detached(client):
        result = await login(client, username, password, token=token)
    assert result["__typename"] == "CachedSession", result
    token_value: str = result["token"]
    return token_value


async def admin_token(client: GraphQLClient) -> str:
    return await login_token(client, *SUPERADMIN)


async def anonymous_token(client: GraphQLClient) -> str:
    with detached(client):
        data = await client.ok(CREATE_ANONYMOUS_SESSION)
    token: str = data["createAnonymousSession"]["token"]
    return token


async def create_channel(client: GraphQLClient, admin: str, code: str, token: str | None = None) -> dict[str, Any]:
    channel_input: dict[str, Any] = {"code": code} if token is None else {"code": code, "token": token}
    data = await client.ok(CREATE_CHANNEL, {"input": channel_input}, token=admin)
    result: dict[str, Any] = data["createChannel"]
    return result


async def create_role(
    client: GraphQLClient, admin: str, code: str, permissions: list[str], channel_ids: list[str]
) -> dict[str, Any]:
    role_input = {"code": code, "permissions": permissions, "channelIds": channel_ids}
    data = await client.ok(CREATE_ROLE, {"input": role_input}, token=admin)
    result: dict[str, Any] = data["createRole"]
    return result


async def create_user(client: GraphQLClient, admin: str, identifier: str, **fields: Any) -> dict[str, Any]:
    """A user with the password 'pw-' + identifier unless one is given; no roles unless given."""
    user_input = {"identifier": identifier, "password": f"pw-{identifier}", **fields}
    data = await client.ok(CREATE_USER, {"input": user_input}, token=admin)
    result: dict[str, Any] = data["createUser"]
    return result


async def add_item(client: GraphQLClient, variant: str, quantity: int, **kwargs: Any) -> GraphQLResult:
    return await client.execute(ADD_ITEM, {"variant": variant, "quantity": quantity}, **kwargs)


def set_cookies(response: httpx.Response) -> list[dict[str, str]]:
    """Each Set-Cookie header as a dict: '_name', '_value' and its attributes (lower-case keys)."""
    parsed = []
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        cookie = {"_name": name, "_value": value}
        for attribute in attributes:
            key, _, attribute_value = attribute.partition("=")
            cookie[key.lower()] = attribute_value
        parsed.append(cookie)
    return parsed
