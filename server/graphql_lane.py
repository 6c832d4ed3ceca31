"""The lane a shop's requests take: a POST of JSON to /graphql, answered without Starlette's routing.

Nearly every request of a shop is a POST of `application/json` to the GraphQL route, and most of
those are operations the compiled path has a plan for. Between the body-size limit and the view,
Starlette would still match the path against every route, wrap the endpoint in its exception
middleware and apply the route's request policy; for such a request none of that changes anything:
the path is the route's, POST is one of its methods and a content-type of exactly
`application/json` is what the policy lets through untouched. This middleware, placed right inside
the body-size limit, hands that request to the view's lean path (`SessionGraphQL.respond_plain`)
and sends its answer; any other request, or one the lean path does not take, continues down the
stack with its body replayed, exactly as if this middleware were not there.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from schema.compiled.private import read_body
from schema.view import SessionGraphQL
from server.limits import replay_body
from server.request_policy import JSON_BYTES, first_content_type


class GraphQLLane:
    def __init__(self, app: ASGIApp, view: SessionGraphQL, path: str) -> None:
        self.app = app
        self.view = view
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._takes(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await read_body(request)
        response = await self.view.respond_plain(request)
        if response is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        await response(scope, receive, send)

    def _takes(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.path
            and not scope.get("root_path")
            and self.view.lean is not None
            and first_content_type(scope) == JSON_BYTES  # what the request policy lets through unchanged
        )
