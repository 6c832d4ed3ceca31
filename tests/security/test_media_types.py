"""A POST's media type is compared case-insensitively (RFC 9110 8.3.1): any spelling of application/json
is served, with or without parameters; what a form can send is still refused with 415."""

from __future__ import annotations

import pytest

from tests.graphql import GraphQLClient, refusal

QUERY = '{"query": "{ __typename }"}'


@pytest.mark.parametrize(
    "content_type",
    [
        "Application/JSON",
        "APPLICATION/JSON; charset=UTF-8",
        "application/Json ;charset=utf-8",
        " application/json",
    ],
)
async def test_any_spelling_of_application_json_is_served(client: GraphQLClient, content_type: str) -> None:
    response = await client.http.post("/graphql", content=QUERY, headers={"content-type": content_type})
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


@pytest.mark.parametrize("content_type", ["Text/Plain", "APPLICATION/X-WWW-FORM-URLENCODED", "Application/JSONP"])
async def test_other_media_types_in_any_case_are_415(client: GraphQLClient, content_type: str) -> None:
    response = await client.http.post("/graphql", content=QUERY, headers={"content-type": content_type})
    expected = refusal("POST requests must have content-type application/json", "UNSUPPORTED_MEDIA_TYPE")
    assert (response.status_code, response.json()) == (415, expected)
