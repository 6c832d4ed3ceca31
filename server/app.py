"""The application factory."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from schema.schema import build_schema
from schema.view import SessionGraphQL
from server.cors import cors_middleware
from server.health import health
from server.lifespan import make_lifespan
from server.limits import BodySizeLimit
from server.request_policy import request_policy_middleware
from server.settings import Settings


def create_app(settings: Settings) -> Starlette:
    graphql = SessionGraphQL(build_schema(settings), settings)
    return Starlette(
        routes=[
            # Route middleware: it sees only /graphql, after the 405 for other methods.
            Route("/graphql", graphql, methods=["GET", "POST"], middleware=[request_policy_middleware(settings)]),
            Route("/health", health, methods=["GET"]),
        ],
        # Outermost first: CORS headers reach every answer, a 413 included.
        middleware=[
            *cors_middleware(settings),
            Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
        ],
        lifespan=make_lifespan(settings),
    )
