"""The benchmark's controls: the floors its GraphQL paths are compared with, in a process of their own.

    <venv python> bench/controls.py        (HOST and PORT from the environment; started by bench/run.py)

Served by uvicorn with the options and HTTP protocol of `python -m server` (server/commands/serve.py):

- `POST /starlette`: a bare Starlette route answering a constant JSON body: the floor of uvicorn and
  Starlette, with no GraphQL at all;
- `POST /graphql`: Strawberry's stock ASGI view over the service's own schema (server's
  `build_schema`, so the same extensions: token, alias and depth limits, the bounded document and
  validation caches, error masking), asked `{ __typename }`: the floor of a Strawberry request,
  with nothing to resolve;
- `GET /health`: for the benchmark to know it is up.

Nothing here is importable by the service: it exists only for the benchmark.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: `schema`, `server`

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from schema.schema import build_schema
from server.settings import Settings

#: What the GraphQL control answers, so both controls send the same bytes.
CONSTANT_BODY = b'{"data":{"__typename":"Query"}}'


async def constant(request: Request) -> Response:
    return Response(CONSTANT_BODY, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


def create_controls(settings: Settings) -> Starlette:
    graphql = GraphQL(build_schema(settings), graphql_ide=None, subscription_protocols=())
    return Starlette(
        routes=[
            Route("/starlette", constant, methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main() -> int:
    import uvicorn

    from server.http_protocol import head_limited_protocol

    settings = Settings()
    uvicorn.run(
        create_controls(settings),
        host=os.environ["HOST"],
        port=int(os.environ["PORT"]),
        http=head_limited_protocol(settings.max_header_bytes),
        log_level=os.environ.get("LOG_LEVEL", "warning"),
        access_log=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
