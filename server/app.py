"""The application factory."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from schema.schema import build_schema
from schema.view import SessionGraphQL
from server.cors import cors_middleware
from server.graphql_http import EXCEPTION_HANDLERS
from server.graphql_lane import GraphQLLane
from server.health import health, ready
from server.lifespan import make_lifespan
from server.limits import BodySizeLimit
from server.metrics import metrics
from server.playground import playground_routes
from server.request_policy import request_policy_middleware
from server.settings import Settings

GRAPHQL_PATH = "/graphql"


def create_app(settings: Settings) -> Starlette:
    graphql = SessionGraphQL(build_schema(settings), settings)
    return Starlette(
        routes=[
            # Route middleware: it sees only /graphql, after the 405 for other methods.
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"], middleware=[request_policy_middleware(settings)]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            *metrics_routes(settings),
            *playground_routes(settings),  # GraphiQL's scripts and styles; none when GRAPHIQL=false
        ],
        # Outermost first: CORS headers reach every answer, a 413 included.
        middleware=[
            *cors_middleware(settings),
            Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
            # A plain POST to /graphql goes straight to the view's lean path (server/graphql_lane.py).
            Middleware(GraphQLLane, view=graphql, path=GRAPHQL_PATH),
        ],
        # Starlette's own 404/405 and an unhandled exception's 500 answer JSON like every other refusal.
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=make_lifespan(settings),
    )


def metrics_routes(settings: Settings) -> list[Route]:
    """/metrics on this port, unless it is off or has a listener of its own (METRICS, METRICS_ADDRESS)."""
    if not settings.metrics or settings.metrics_address is not None:
        return []
    return [Route("/metrics", metrics, methods=["GET"])]
