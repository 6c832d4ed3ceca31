"""The request context: channel and session resolved once per request, as Vendure's auth guard does."""

from __future__ import annotations

import time
from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from models import Channel, Permission
from server.cached_session import CachedSession
from server.metrics import observe_lookup_seconds
from server.services import Services
from server.services.client_info import ClientInfo
from server.services.errors import SessionEndedError
from server.services.request_context import RequestContext
from server.services.session import EndedByLogin
from server.settings import Settings
from server.tokens import (
    COOKIE,
    RequestHeaders,
    clear_session_cookie,
    read_session_tokens,
    refresh_session_cookie,
    write_session_token,
)


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    services: Services
    channel: Channel
    session: CachedSession | None = None
    #: the request carried the token of a guest session that a login just ended (see MERGED_SESSION_GRACE)
    session_ended: bool = False

    @classmethod
    async def build(
        cls,
        request: Request,
        response: Response,
        settings: Settings,
        services: Services,
        channel: Channel,
        headers: RequestHeaders,
    ) -> Context:
        context = cls(request, response, settings, services, channel)
        for token, source in read_session_tokens(request, headers, settings):
            started = time.perf_counter()
            # The token is this request's own credential: its use is the session's activity.
            session, slid = await services.sessions.resolve_token(token, context.client)
            observe_lookup_seconds(time.perf_counter() - started)
            if isinstance(session, EndedByLogin):
                # A request that raced the login which ended it: no session, no new one, and the
                # cookie left alone, since the login's response has set the new one.
                context.session_ended = True
                return context
            if session is not None and session.active_channel_id != channel.id:
                try:
                    session = await services.sessions.set_active_channel(session, channel)
                except SessionEndedError:  # ended meanwhile (a logout racing this request): no session
                    session = None
            if session is not None:
                context.session = session
                if slid and source == COOKIE:  # a remembered cookie lives as long as its session, no less
                    refresh_session_cookie(response, token, settings, session.expires)
                return context
            if source == COOKIE:  # a stale cookie is cleared, and a bearer token may still be valid
                clear_session_cookie(response, settings)
        return context

    @property
    def client(self) -> ClientInfo:
        """This request's client: its address (see FORWARDED_ALLOW_IPS) and user agent."""
        client = self.request.client
        return ClientInfo(client.host if client else None, self.request.headers.get("user-agent"))

    @property
    def request_context(self) -> RequestContext:
        client = self.client
        return RequestContext(
            channel_id=self.channel.id,
            session=self.session,
            client_address=client.address,
            user_agent=client.user_agent,
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
            if self.session_ended:
                raise SessionEndedError()
            self.session = await self.services.sessions.create_anonymous_session(self.channel.id, self.client)
            write_session_token(self.response, self.session.token, self.settings)
        return self.session

    def start_session(self, session: CachedSession, remember_me: bool) -> None:
        self.session = session
        write_session_token(self.response, session.token, self.settings, remember_me)

    def end_session(self) -> None:
        self.session = None
        clear_session_cookie(self.response, self.settings)

    async def log_out(self) -> bool:
        """End this request's session (logout): gone from the database and every cache, cookie cleared;
        whether there was one to end."""
        session = self.session
        deleted = session is not None and await self.services.sessions.delete_session(session)
        self.end_session()
        return deleted


Info = strawberry.Info[Context, None]
