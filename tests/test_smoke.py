from __future__ import annotations

from server.services import Services
from tests.graphql import GraphQLClient


async def test_service_fixture_creates_anonymous_session(services: Services) -> None:
    session = await services.sessions.create_anonymous_session()
    assert (await services.sessions.get_session_from_token(session.token)) == session


async def test_client_fixture_serves_graphql(client: GraphQLClient) -> None:
    data = await client.ok("mutation { createAnonymousSession { id } }")
    assert data == {"createAnonymousSession": {"id": "1"}}
