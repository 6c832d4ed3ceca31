"""The GraphiQL playground is served by the service itself: its page, its assets and their sources."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from server.app import create_app
from server.playground import ASSETS_PATH, CONTENT_SECURITY_POLICY, refresh
from server.playground.assets import load_assets
from server.settings import Settings
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import refusal

pytestmark = pytest.mark.backends("sqlite")  # nothing here touches the database beyond the app's start

PLAYGROUND = Path(__file__).resolve().parents[1] / "server" / "playground"
HTML = {"accept": "text/html"}
YEAR = "max-age=31536000"
NOT_FOUND = refusal("Not Found", "NOT_FOUND")
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
#: References a browser follows by itself (anchors the user clicks are not loads): CSS url() and
#: @import, src/srcset/href attributes and properties, ES module imports, importScripts, source maps.
LOADS = re.compile(
    r"""url\(\s*["']?(?P<a>[^"')\s]+)"""
    r"""|@import\s+["'](?P<b>[^"']+)"""
    r"""|\b(?:src|srcset|href)\s*=\s*["']?(?P<c>[^"'\s>]+)"""
    r"""|\b(?:src|srcset)\s*:\s*["'`](?P<d>[^"'`]+)"""
    r"""|\bimport\s*\(\s*["'`](?P<e>[^"'`]+)"""
    r"""|\bfrom\s*["'`](?P<f>(?:https?:)?//[^"'`]+)"""
    r"""|importScripts\(\s*["'`](?P<g>[^"'`]+)"""
    r"""|sourceMappingURL=(?P<h>\S+)"""
)
TRAVERSALS = [
    "graphiql.min.js",  # a file's name on disk is not a served name
    "sources.json",
    "..%2Fsources.json",
    "..%2fsources.json",
    "%2e%2e%2fsources.json",
    "%2E%2E%2Frefresh.py",
    "..%252Fsources.json",
    "..%5Csources.json",
    "..%5c..%5cassets.py",
    "%2e%2e%5crefresh.py",
    "static%2Fgraphiql.min.js",
    "%2Fetc%2Fpasswd",
    "..%c0%afsources.json",
]


async def _start(make_client: ClientFactory, settings: Settings) -> httpx.AsyncClient:
    return (await make_client(settings)).http


def _assets_named(page: str) -> list[str]:
    parser = _PageParser()
    parser.feed(page)
    return [*parser.stylesheets, *parser.scripts]


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline: list[str] = []  # inline scripts, styles, style attributes and event handlers
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.inline += [f"{tag} {name}" for name in attributes if name == "style" or name.startswith("on")]
        if tag == "script":
            self._in_script = True
            src = attributes.get("src")
            if src:
                self.scripts.append(src)
            else:
                self.inline.append("script without src")
        elif tag == "style":
            self.inline.append("style element")
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script body {data[:40]!r}")


async def test_page_is_sent_with_a_policy_that_allows_only_this_origin(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    http = await _start(make_client, make_settings())

    response, again = await http.get("/graphql", headers=HTML), await http.get("/graphql", headers=HTML)

    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    nonce = re.fullmatch(r".*'nonce-([A-Za-z0-9_-]{22})'.*", policy)
    assert nonce is not None, policy
    assert policy == CONTENT_SECURITY_POLICY.format(style_nonce=nonce[1])
    assert f'data-style-nonce="{nonce[1]}"' in response.text  # for the one <style> GraphiQL's dialogs add
    assert nonce[1] not in again.headers["content-security-policy"]  # a new one for every response
    directives = dict(directive.split(" ", 1) for directive in policy.split("; "))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": f"'self' 'nonce-{nonce[1]}'",
        "font-src": "'self' data:",  # GraphiQL's stylesheet embeds its fonts
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert (response.headers["cache-control"], response.headers["x-content-type-options"]) == ("no-cache", "nosniff")


async def test_page_has_no_inline_script_or_style(make_settings: SettingsFactory, make_client: ClientFactory) -> None:
    http = await _start(make_client, make_settings())

    parser = _PageParser()
    parser.feed((await http.get("/graphql", headers=HTML)).text)

    assert parser.inline == []
    assert [Path(urlsplit(src).path).name.split(".")[0] for src in parser.scripts] == [
        "react",
        "react-dom",
        "graphiql",
        "playground",
    ]


async def test_page_tells_the_script_how_tokens_travel(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    http = await _start(make_client, make_settings(token_methods=("bearer",), auth_token_header="x-session-token"))

    page = (await http.get("/graphql", headers=HTML)).text

    assert 'data-token-methods="bearer" data-token-header="x-session-token"' in page


async def test_every_asset_is_served_immutable_with_its_content_type(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    http = await _start(make_client, make_settings())
    names = _assets_named((await http.get("/graphql", headers=HTML)).text)
    assert len(names) == len(load_assets()) == 6

    for name in names:
        assert name.startswith(f"{ASSETS_PATH}/")
        response = await http.get(name)
        assert response.status_code == 200, name
        assert response.headers["content-type"] == CONTENT_TYPES[Path(name).suffix]
        assert response.headers["cache-control"] == f"public, {YEAR}, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        digest = Path(name).suffixes[-2].lstrip(".")  # the content hash is part of the name
        assert hashlib.sha256(response.content).hexdigest().startswith(digest)
        again = await http.get(name, headers={"if-none-match": response.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")


async def test_nothing_the_browser_loads_names_another_origin(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    http = await _start(make_client, make_settings())
    page = (await http.get("/graphql", headers=HTML)).text
    documents = {"page": page} | {name: (await http.get(name)).text for name in _assets_named(page)}

    outside = {
        name: sorted({reference for reference in _references(text) if _leaves_the_origin(reference)})
        for name, text in documents.items()
    }

    assert outside == {name: [] for name in documents}
    assert "https://" not in page and "http://" not in page


def _references(text: str) -> list[str]:
    return [next(value for value in match.groupdict().values() if value) for match in LOADS.finditer(text)]


def _leaves_the_origin(reference: str) -> bool:
    """An absolute or protocol-relative URL; data: URLs and paths stay on this origin."""
    return bool(re.match(r"(?i)(https?:|//|\\\\|[a-z][a-z0-9+.-]*://)", reference.strip()))


async def test_graphiql_off_removes_the_page_and_the_assets(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    http = await _start(make_client, make_settings(graphiql=False))

    answers = [(await http.get("/graphql", headers=HTML)).status_code]
    answers += [(await http.get(f"{ASSETS_PATH}/{asset.name}")).status_code for asset in load_assets().values()]

    assert answers == [404] * 7


@pytest.mark.parametrize("name", TRAVERSALS)
async def test_unknown_asset_names_are_404(name: str) -> None:
    status, body = await _raw_get(create_app(Settings(graphiql=True)), f"{ASSETS_PATH}/{name}")
    assert (status, json.loads(body)) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    "path",
    [
        f"{ASSETS_PATH}/../playground/sources.json",
        f"{ASSETS_PATH}/../../server/playground/sources.json",
        f"{ASSETS_PATH}/./graphiql.min.js",
        f"{ASSETS_PATH}/..\\sources.json",
        f"{ASSETS_PATH}//etc/passwd",
    ],
)
async def test_literal_traversals_are_404(path: str) -> None:
    """Sent as they are (an HTTP client would remove the dot segments before sending)."""
    status, body = await _raw_get(create_app(Settings(graphiql=True)), path)
    assert (status, json.loads(body)) == (404, NOT_FOUND)


async def _raw_get(app: Any, raw_path: str) -> tuple[int, bytes]:
    """One GET through the ASGI app with the path exactly as given, as uvicorn would pass it on."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return sent[0]["status"], body


def test_shipped_files_are_the_pinned_ones() -> None:
    """static/ and licenses/ hold what sources.json records (python -m server.playground.refresh wrote it)."""
    sources = json.loads((PLAYGROUND / "sources.json").read_text())
    recorded = {entry["to"]: entry["sha256"] for package in sources["packages"] for entry in package["files"]}
    shipped = {
        f"{folder}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("static", "licenses")
        for path in (PLAYGROUND / folder).iterdir()
    }
    ours = {"static/playground.js", "static/playground.css"}

    assert {path: digest for path, digest in shipped.items() if path not in ours} == recorded
    assert {f"licenses/{package['name']}.LICENSE" for package in sources["packages"]} <= set(recorded)
    for package in sources["packages"]:
        assert package["tarball"].startswith(f"{sources['registry']}/{package['name']}/-/")
        assert package["integrity"].startswith("sha512-")


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_refresh_takes_files_only_from_a_tarball_that_matches_its_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = _tarball({"package/LICENSE": b"MIT"})
    monkeypatch.setattr(refresh, "download", lambda url: tarball)
    pinned = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    package = {
        "tarball": "https://registry.example/x/-/x-1.0.0.tgz",
        "integrity": pinned,
        "files": [{"from": "package/LICENSE", "to": "licenses/not-shipped.LICENSE"}],
    }

    # check=True: compared, never written
    assert refresh.refresh(package, check=True) == ["licenses/not-shipped.LICENSE"]
    assert package["files"] == [
        {"from": "package/LICENSE", "to": "licenses/not-shipped.LICENSE", "sha256": hashlib.sha256(b"MIT").hexdigest()}
    ]
    assert not (PLAYGROUND / "licenses" / "not-shipped.LICENSE").exists()

    package["integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(b"another").digest()).decode()
    with pytest.raises(refresh.RefreshError, match="sources.json pins"):
        refresh.refresh(package, check=True)
