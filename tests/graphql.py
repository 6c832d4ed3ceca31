"""A small GraphQL client over httpx for API tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class GraphQLResult:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]] | None
    response: httpx.Response

    @property
    def codes(self) -> list[str]:
        return [error.get("extensions", {}).get("code") for error in self.errors or []]


def refusal(message: str, code: str) -> dict[str, Any]:
    """The GraphQL-over-HTTP error body of a transport-level refusal (server/graphql_http.py)."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, path: str = "/graphql") -> None:
        self.http = http
        self.path = path

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResult:
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["authorization"] = f"Bearer {token}"
        response = await self.http.post(
            self.path, json={"query": query, "variables": variables or {}}, headers=request_headers
        )
        body = response.json()
        return GraphQLResult(data=body.get("data"), errors=body.get("errors"), response=response)

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Execute and assert there were no errors; returns `data`."""
        result = await self.execute(query, variables, **kwargs)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data
