"""The application factory."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from schema.schema import build_schema
from schema.view import SessionGraphQL
from server.health import health
from server.lifespan import make_lifespan
from server.settings import Settings


def create_app(settings: Settings) -> Starlette:
    graphql = SessionGraphQL(build_schema(), settings)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=make_lifespan(settings),
    )
