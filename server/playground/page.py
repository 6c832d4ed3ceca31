"""The GraphiQL page: every script and style from this origin, under a policy that allows nothing else.

The page carries no inline script or style; playground.js reads how tokens travel (TOKEN_METHOD,
AUTH_TOKEN_HEADER) and the response's style nonce from the data attributes of the #graphiql element.
"""

from __future__ import annotations

import secrets
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse

from server.playground.assets import asset_url
from server.settings import Settings

#: GraphiQL's stylesheet embeds its fonts and icons as data: URLs; nothing is fetched from elsewhere.
#: Its dialogs add one <style> element (a scroll lock) carrying the page's nonce, which playground.js
#: hands to GraphiQL; no other inline style applies.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'nonce-{style_nonce}'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
STYLESHEETS = ("graphiql.min.css", "playground.css")
#: In load order: React before GraphiQL, the start-up script last.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "playground.js")

PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Session service · GraphiQL</title>
    <link rel="icon" href="data:,">
{stylesheets}
  </head>
  <body>
    <header id="session-bar" class="session-bar"></header>
    <main id="graphiql" data-token-methods="{token_methods}" data-token-header="{token_header}"
          data-cookie-name="{cookie_name}" data-style-nonce="{style_nonce}">Loading…</main>
{scripts}
  </body>
</html>
"""


def playground_page(request: Request, settings: Settings) -> HTMLResponse:
    style_nonce = secrets.token_urlsafe(16)
    stylesheets = "\n".join(
        f'    <link rel="stylesheet" href="{escape(asset_url(request, name))}">' for name in STYLESHEETS
    )
    scripts = "\n".join(f'    <script src="{escape(asset_url(request, name))}"></script>' for name in SCRIPTS)
    html = PAGE.format(
        stylesheets=stylesheets,
        scripts=scripts,
        token_methods=escape(",".join(settings.token_methods)),
        token_header=escape(settings.auth_token_header),
        cookie_name=escape(settings.session_cookie_name),
        style_nonce=style_nonce,
    )
    headers = {
        "content-security-policy": CONTENT_SECURITY_POLICY.format(style_nonce=style_nonce),
        # The page names the current asset hashes: revalidate it every time.
        "cache-control": "no-cache",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }
    return HTMLResponse(html, headers=headers)
