"""Channels (store fronts); known channels are remembered in-process for the request hot path."""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError

from models import Channel, Role
from server.services.errors import UserInputError
from server.services.session import SessionService
from server.services.text import check_storable, is_storable

DEFAULT_CHANNEL_CODE = "__default_channel__"
SUPER_ADMIN_ROLE_CODE = "__super_admin_role__"
MAX_CODE_LENGTH = 64
MAX_TOKEN_LENGTH = 128


class ChannelService:
    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions
        self._by_token: dict[str, Channel] = {}
        self._default: Channel | None = None

    async def get_default_channel(self) -> Channel:
        if self._default is None:
            self._default = await Channel.get(is_default=True)
        return self._default

    async def get_channel_from_token(self, token: str | None) -> Channel | None:
        """The channel named by a client's channel token; the default channel when there is none."""
        if not token:
            return await self.get_default_channel()
        channel = self._by_token.get(token)
        if channel is None and len(token) <= MAX_TOKEN_LENGTH and is_storable(token):
            channel = await Channel.filter(token=token).first()
            if channel is not None:
                if len(self._by_token) >= 1000:
                    self._by_token.clear()
                self._by_token[token] = channel
        return channel

    async def find_one(self, channel_id: int) -> Channel | None:
        return await Channel.filter(id=channel_id).first()

    async def create(self, code: str, token: str | None = None) -> Channel:
        """A new channel, granted to the SuperAdmin role; every cached session is forgotten."""
        code = code.strip()
        token = secrets.token_urlsafe(16) if token is None else token.strip()
        if not 0 < len(code) <= MAX_CODE_LENGTH:
            raise UserInputError(f"code must be 1 to {MAX_CODE_LENGTH} characters")
        if not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise UserInputError(f"token must be 1 to {MAX_TOKEN_LENGTH} characters")
        check_storable(code, "code")
        check_storable(token, "token")
        if await Channel.filter(code=code).exists() or await Channel.filter(token=token).exists():
            raise UserInputError("a channel with this code or token already exists")
        try:
            channel = await Channel.create(code=code, token=token)
        except IntegrityError:
            raise UserInputError("a channel with this code or token already exists") from None
        super_admin = await Role.filter(code=SUPER_ADMIN_ROLE_CODE).first()
        if super_admin is not None:
            await super_admin.channels.add(channel)
        await self._sessions.clear_cache()
        return channel
