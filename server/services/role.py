"""Roles: permissions granted on channels. Every change clears the session cache.

Who may grant what is the actor's to say (server/services/actor.py): creating a role needs CreateRole,
and changing one UpdateRole, on every channel it is or will be on, as well as every permission it
holds before and after. The SuperAdmin permission belongs to the SuperAdmin role alone, and that role
is the bootstrap's: nobody changes it through the API.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import Channel, Permission, Role
from models.enums import PERMISSION_ORDER
from server.services.actor import NOBODY, Actor, role_permissions
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.errors import EntityNotFoundError, ForbiddenError, UserInputError
from server.services.session import SessionService
from server.services.text import check_storable

MAX_CODE_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 255


class RoleService:
    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions

    async def find_one(self, role_id: int) -> Role | None:
        return await Role.filter(id=role_id).prefetch_related("channels").first()

    async def create(
        self,
        code: str,
        description: str | None,
        permissions: Sequence[Permission],
        channel_ids: Sequence[int],
        *,
        actor: Actor = NOBODY,
    ) -> Role:
        code = code.strip()
        if not 0 < len(code) <= MAX_CODE_LENGTH:
            raise UserInputError(f"code must be 1 to {MAX_CODE_LENGTH} characters")
        check_storable(code, "code")
        description = self._checked_description(description or "")
        permissions = _grantable(permissions)
        channels = await self._channels(channel_ids)
        actor.check_holds({*permissions, Permission.CreateRole}, [channel.id for channel in channels])
        if await Role.filter(code=code).exists():
            raise UserInputError(f"a role with the code '{code}' already exists")
        try:
            async with in_transaction() as connection:
                role = await Role.create(
                    code=code, description=description, permissions=_normalised(permissions), using_db=connection
                )
                if channels:
                    await role.channels.add(*channels, using_db=connection)
        except IntegrityError:
            raise UserInputError(f"a role with the code '{code}' already exists") from None
        await self._sessions.clear_cache()
        return await self._reloaded(role.id)

    async def update(
        self,
        role_id: int,
        description: str | None = None,
        permissions: Sequence[Permission] | None = None,
        channel_ids: Sequence[int] | None = None,
        *,
        actor: Actor = NOBODY,
    ) -> Role:
        """Change what is given; the actor must hold UpdateRole and the role's permissions, old and new,
        on each of its channels, old and new."""
        if description is not None:
            description = self._checked_description(description)
        if permissions is not None:
            permissions = _grantable(permissions)
        channels = None if channel_ids is None else await self._channels(channel_ids)
        async with in_transaction() as connection:
            # Locked, so that what the actor is checked against is what the change replaces.
            role = await Role.filter(id=role_id).using_db(connection).select_for_update().first()
            if role is None:
                raise EntityNotFoundError("Role", role_id)
            if role.code == SUPER_ADMIN_ROLE_CODE:
                raise ForbiddenError("The SuperAdmin role cannot be changed")
            before = {channel.id for channel in await role.channels.all().using_db(connection)}
            after = before if channels is None else {channel.id for channel in channels}
            actor.check_holds({*role_permissions(role), *(permissions or ()), Permission.UpdateRole}, before | after)
            if description is not None:
                role.description = description
            if permissions is not None:
                role.permissions = _normalised(permissions)
            await role.save(using_db=connection)
            if channels is not None:
                await role.channels.clear(using_db=connection)
                if channels:
                    await role.channels.add(*channels, using_db=connection)
        await self._sessions.clear_cache()
        return await self._reloaded(role.id)

    async def _reloaded(self, role_id: int) -> Role:
        role = await self.find_one(role_id)
        assert role is not None
        return role

    @staticmethod
    def _checked_description(description: str) -> str:
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise UserInputError(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
        return check_storable(description, "description")

    @staticmethod
    async def _channels(channel_ids: Sequence[int]) -> list[Channel]:
        wanted = set(channel_ids)
        channels = await Channel.filter(id__in=wanted) if wanted else []
        missing = wanted - {channel.id for channel in channels}
        if missing:
            raise EntityNotFoundError("Channel", min(missing))
        return sorted(channels, key=lambda channel: channel.id)


def _grantable(permissions: Sequence[Permission]) -> Sequence[Permission]:
    if Permission.SuperAdmin in permissions:
        raise UserInputError("the SuperAdmin permission cannot be granted: it belongs to the SuperAdmin role alone")
    return permissions


def _normalised(permissions: Sequence[Permission]) -> list[str]:
    return [p.value for p in sorted(set(permissions), key=PERMISSION_ORDER.__getitem__)]
