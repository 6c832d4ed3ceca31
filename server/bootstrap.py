"""First start: the default channel, the SuperAdmin role and the superadmin user (idempotent)."""

from __future__ import annotations

import logging
import secrets

from tortoise.exceptions import IntegrityError

from models import Channel, Permission, Role, User
from server.database import startup_lock
from server.services.channel import DEFAULT_CHANNEL_CODE, SUPER_ADMIN_ROLE_CODE
from server.services.passwords import hash_password
from server.settings import Settings

logger = logging.getLogger(__name__)


async def bootstrap(settings: Settings) -> None:
    # One instance at a time: concurrent first starts would race on the role's channel link.
    async with startup_lock(settings.database_url):
        channel = await _default_channel()
        role = await _super_admin_role(channel)
        await _superadmin(settings, role)
    defaults = Settings()
    if settings.superadmin_password == defaults.superadmin_password:
        logger.warning("SUPERADMIN_PASSWORD is the default: set it before this service faces the internet")


async def _default_channel() -> Channel:
    channel = await Channel.filter(is_default=True).first()
    if channel is None:
        try:
            channel = await Channel.create(code=DEFAULT_CHANNEL_CODE, token=secrets.token_urlsafe(16), is_default=True)
        except IntegrityError:  # another instance created it first
            channel = await Channel.get(is_default=True)
    return channel


async def _super_admin_role(channel: Channel) -> Role:
    role = await Role.filter(code=SUPER_ADMIN_ROLE_CODE).first()
    if role is None:
        try:
            role = await Role.create(
                code=SUPER_ADMIN_ROLE_CODE,
                description="SuperAdmin",
                permissions=[p.value for p in Permission],
            )
        except IntegrityError:
            role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
    if not await role.channels.filter(id=channel.id).exists():
        await role.channels.add(channel)
    return role


async def _superadmin(settings: Settings, role: Role) -> None:
    if await User.filter(identifier=settings.superadmin_identifier).exists():
        return
    password_hash = await hash_password(settings.superadmin_password)
    try:
        user = await User.create(identifier=settings.superadmin_identifier, password_hash=password_hash, verified=True)
    except IntegrityError:
        return
    await user.roles.add(role)
    logger.info("created the superadmin user %r", settings.superadmin_identifier)
