"""The Strawberry ASGI view: builds the typed Context per request, no subscriptions."""

from __future__ import annotations

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from schema.context import Context
from schema.errors import with_default_codes
from server.services import Services
from server.settings import Settings


class SessionGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: object, settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql", subscription_protocols=())  # type: ignore[arg-type]
        self.settings = settings

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        assert isinstance(request, Request) and isinstance(response, Response)
        services: Services = request.state.services
        channel_token = request.headers.get(self.settings.channel_token_header)
        channel = await services.channels.get_channel_from_token(channel_token)
        if channel is None:
            raise HTTPException(400, f"No channel matches the {self.settings.channel_token_header} header")
        return await Context.build(request, response, self.settings, services, channel)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            with_default_codes(result.errors)
        return process_result(result)
