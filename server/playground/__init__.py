"""GraphiQL served by the service itself: the page (rendered by schema/view.py) and its assets.

The vendored files in static/ and licenses/ come from the npm registry at the versions pinned in
sources.json; README.md beside this file says how to refresh them.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from server.playground.assets import ASSETS_PATH, serve_asset
from server.playground.page import CONTENT_SECURITY_POLICY, playground_page
from server.settings import Settings

__all__ = ["ASSETS_PATH", "CONTENT_SECURITY_POLICY", "playground_page", "playground_routes"]


def playground_routes(settings: Settings) -> list[BaseRoute]:
    """The asset route, or none when GRAPHIQL=false (the page is gone then as well)."""
    if not settings.graphiql:
        return []
    return [Route(f"{ASSETS_PATH}/{{name}}", serve_asset, methods=["GET"])]
