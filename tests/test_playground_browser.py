"""The playground in a real headless Chromium against `python -m server`, as a new user meets it.

Playwright drives the system's Chromium (/usr/bin/chromium, Debian's `chromium` package; `.ci/run`
installs it). Without it, or without playwright, the test skips with the reason, except in CI
(REQUIRE_SERVICES=1 or CI set), where that is a failure. Screenshots go to test-artifacts/:
playground-<mode>-<field>.png after each operation, playground-<mode>.png at the end (failures too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

from tests.live_server import REPO_ROOT, live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts"
README = REPO_ROOT / "README.md"
CHROMIUM = "/usr/bin/chromium"
LOAD_TIMEOUT_MS = 20_000
EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".graphiql-response"


def _in_ci() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI", "").lower() not in ("", "0", "false")


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason}, and a browser is required in CI")
    pytest.skip(reason)


def _readme_operation(field: str) -> str:
    """The first GraphQL block of README.md that uses `field`."""
    for block in re.findall(r"```graphql\n(.*?)```", README.read_text(), flags=re.DOTALL):
        if field in block:
            return str(block).strip()
    raise AssertionError(f"README.md has no graphql block with {field}")


#: README's first step (a guest's first operation) and the operation of its second (the session).
ADD_ITEM = "addItemToOrder"
ACTIVE_SESSION = "activeSession"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """One page of the playground with every request it made and every error it logged."""

    def __init__(self, browser: Browser, url: str, name: str) -> None:
        self.name = name
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        # Anything bound elsewhere is recorded, then refused, so that a test cannot hang on it.
        self.context.route(lambda target: not _is_local(target), lambda route: route.abort())
        self.page = self.context.new_page()
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self._console(message.type, message.text))
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.goto(f"{url}/graphql")
        self.page.locator(EDITOR).first.wait_for(timeout=LOAD_TIMEOUT_MS)

    def _console(self, kind: str, text: str) -> None:
        if kind in ("error", "warning"):
            self.errors.append(f"console {kind}: {text}")

    def run(self, field: str) -> tuple[Response, dict[str, Any]]:
        """Type README's operation with `field` into the editor as a user would, run it, and wait for
        `field` in the result pane; the HTTP response and the field's data."""
        from playwright.sync_api import expect

        operation = _readme_operation(field)
        page: Page = self.page
        page.locator(EDITOR).first.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(operation)  # replaces the selection, as a paste does
        expect(page.locator(EDITOR).first).to_contain_text(field)
        page.keyboard.press("Shift+Control+P")  # GraphiQL's prettify, so that the screenshot shows it whole
        page.keyboard.press("Escape")  # the completion list GraphiQL opens on a letter's keyup
        page.wait_for_timeout(500)  # GraphiQL re-reads the document's operations after a short debounce
        with page.expect_response(lambda answer: _is_operation(answer, field)) as answered:
            page.locator(".graphiql-execute-button").click()
        response = answered.value
        expect(page.locator(RESULT)).to_contain_text(f'"{field}"', timeout=LOAD_TIMEOUT_MS)
        self.screenshot(f"{self.name}-{field}.png")
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"][field]
        return response, data

    def open_dialog(self, label: str) -> None:
        """Open and close one of GraphiQL's dialogs (they add a <style> element: the nonce's case)."""
        from playwright.sync_api import expect

        self.page.get_by_label(label).first.click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        self.page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

    def result_pane(self) -> str:
        text: str = self.page.locator(RESULT).inner_text()
        return text

    def screenshot(self, file_name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / file_name))

    def close(self) -> None:
        """The last state (a failure's too) in test-artifacts/<name>.png, then the browser context closed."""
        try:
            self.screenshot(f"{self.name}.png")
        finally:
            self.context.close()


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or (parts.scheme == "http" and parts.hostname == "127.0.0.1")


def _is_operation(response: Response, field: str) -> bool:
    request = response.request
    return request.method == "POST" and urlsplit(response.url).path == "/graphql" and field in (request.post_data or "")


@pytest.fixture
def visit(browser: Browser, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Visit]:
    with live_server(tmp_path, **request.param) as port:
        page = Visit(browser, f"http://127.0.0.1:{port}", f"playground-{request.node.callspec.id}")
        try:
            yield page
        finally:
            page.close()


@pytest.mark.parametrize("visit", [{"TOKEN_METHOD": "cookie,bearer"}], indirect=True, ids=["cookie"])
def test_readme_operations_keep_one_session_in_cookie_mode(visit: Visit) -> None:
    added, order = visit.run(ADD_ITEM)
    assert order["code"] in visit.result_pane()
    [cookie] = visit.context.cookies()
    assert (cookie["name"], cookie["value"], cookie["httpOnly"]) == ("session", added.headers["auth-token"], True)

    answer, session = visit.run(ACTIVE_SESSION)

    assert session["activeOrderId"] == order["id"]
    assert f'"activeOrderId": "{order["id"]}"' in visit.result_pane()
    sent = answer.request.all_headers()
    assert (sent["cookie"], "authorization" in sent) == (f"session={cookie['value']}", False)
    visit.open_dialog("Open settings dialog")
    visit.open_dialog("Open short keys dialog")
    assert visit.page.locator("#session-bar").inner_text().startswith("Session")
    _assert_stayed_local(visit)


@pytest.mark.parametrize("visit", [{"TOKEN_METHOD": "bearer"}], indirect=True, ids=["bearer"])
def test_readme_operations_keep_one_session_in_bearer_mode(visit: Visit) -> None:
    added, order = visit.run(ADD_ITEM)
    token = added.headers["auth-token"]
    assert visit.page.locator(".session-token").inner_text() == token

    answer, session = visit.run(ACTIVE_SESSION)

    assert answer.request.all_headers()["authorization"] == f"Bearer {token}"
    assert session["activeOrderId"] == order["id"]
    assert f'"activeOrderId": "{order["id"]}"' in visit.result_pane()
    assert visit.context.cookies() == []
    _assert_stayed_local(visit)


def _assert_stayed_local(visit: Visit) -> None:
    assert visit.requests, "the page made no request"
    assert [url for url in visit.requests if not _is_local(url)] == []
    assert visit.errors == []  # a Content-Security-Policy violation is logged as a console error
    assert json.dumps(visit.requests).count("/graphiql/assets/") == 6
