"""The request context: channel and session resolved once per request, as Vendure's auth guard does."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from models import Channel, Permission
from server.cached_session import CachedSession
from server.services import Services
from server.services.request_context import RequestContext
from server.settings import Settings
from server.tokens import COOKIE, clear_session_cookie, read_session_tokens, write_session_token


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    services: Services
    channel: Channel
    session: CachedSession | None = None

    @classmethod
    async def build(
        cls, request: Request, response: Response, settings: Settings, services: Services, channel: Channel
    ) -> Context:
        context = cls(request, response, settings, services, channel)
        for token, source in read_session_tokens(request, settings):
            session = await services.sessions.get_session_from_token(token)
            if session is not None:
                if session.active_channel_id != channel.id:
                    session = await services.sessions.set_active_channel(session, channel)
                context.session = session
                return context
            if source == COOKIE:  # a stale cookie is cleared, and a bearer token may still be valid
                clear_session_cookie(response, settings)
        return context

    @property
    def request_context(self) -> RequestContext:
        client = self.request.client
        return RequestContext(
            channel_id=self.channel.id, session=self.session, client_address=client.host if client else None
        )

    @property
    def permissions(self) -> frozenset[Permission]:
        """The session user's permissions on this request's channel."""
        if self.session is None or self.session.user is None:
            return frozenset()
        return self.session.user.permissions_on(self.channel.id)

    async def ensure_session(self) -> CachedSession:
        """The request's session, creating an anonymous one (and sending its token) when there is none."""
        if self.session is None:
            self.session = await self.services.sessions.create_anonymous_session(self.channel.id)
            write_session_token(self.response, self.session.token, self.settings)
        return self.session

    def start_session(self, session: CachedSession, remember_me: bool) -> None:
        self.session = session
        write_session_token(self.response, session.token, self.settings, remember_me)

    def end_session(self) -> None:
        self.session = None
        clear_session_cookie(self.response, self.settings)


Info = strawberry.Info[Context, None]
