"""The playground's scripts and styles, served from memory under names that carry their content hash.

A name changes whenever its content does, so every answer may be cached for a year without
revalidation (`immutable`). Only the names built here are served: a request names a key of a
dictionary, never a path on disk.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

STATIC = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/graphiql/assets"
CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
HASH_LENGTH = 16


@dataclass(frozen=True)
class Asset:
    name: str  #: the served name: `graphiql.min.<hash>.js` for static/graphiql.min.js
    body: bytes
    content_type: str

    @property
    def etag(self) -> str:
        return f'"{self.name}"'


@functools.cache
def load_assets() -> dict[str, Asset]:
    """Every file of static/ keyed by its file name on disk; read once per process."""
    assets: dict[str, Asset] = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix not in CONTENT_TYPES:
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
        served = f"{path.stem}.{digest}{path.suffix}"
        assets[path.name] = Asset(name=served, body=body, content_type=CONTENT_TYPES[path.suffix])
    return assets


@functools.cache
def _by_served_name() -> dict[str, Asset]:
    return {asset.name: asset for asset in load_assets().values()}


def asset_url(request: Request, file_name: str) -> str:
    """The path the page uses for static/`file_name`, below the app's root path."""
    return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{load_assets()[file_name].name}"


async def serve_asset(request: Request) -> Response:
    """GET/HEAD /graphiql/assets/{name}: the asset, cacheable for a year, or 404."""
    asset = _by_served_name().get(request.path_params["name"])
    if asset is None:
        raise HTTPException(404)
    headers = {"cache-control": CACHE_CONTROL, "etag": asset.etag, "x-content-type-options": "nosniff"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, headers=headers, media_type=asset.content_type)
