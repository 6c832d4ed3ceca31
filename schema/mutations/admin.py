from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.ids import parse_id, parse_ids
from schema.inputs import CreateChannelInput, CreateRoleInput, CreateUserInput, UpdateRoleInput
from schema.permissions import actor, allow
from schema.types import Channel, Role, User


def _given(value: object) -> bool:
    return value is not strawberry.UNSET and value is not None


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        extensions=allow(Permission.CreateChannel),
        description=(
            "Creates a channel and puts it on the SuperAdmin role; a duplicate code or token is BAD_USER_INPUT. "
            "Clears the session cache. Needs CreateChannel."
        ),
    )
    async def create_channel(
        self, info: Info, input: Annotated[CreateChannelInput, strawberry.argument(description="The channel.")]
    ) -> Channel:
        token = input.token if _given(input.token) else None
        return Channel.from_domain(await info.context.services.channels.create(input.code, token))

    @strawberry.mutation(
        extensions=allow(Permission.CreateRole),
        description=(
            "Creates a role; a duplicate code is BAD_USER_INPUT. The caller must hold CreateRole and every "
            "permission given, on each of the role's channels (FORBIDDEN otherwise). Clears the session cache."
        ),
    )
    async def create_role(
        self, info: Info, input: Annotated[CreateRoleInput, strawberry.argument(description="The role.")]
    ) -> Role:
        role = await info.context.services.roles.create(
            code=input.code,
            description=input.description if _given(input.description) else None,
            permissions=input.permissions,
            channel_ids=parse_ids(input.channel_ids, "Channel"),
            actor=actor(info),
        )
        return Role.from_domain(role)

    @strawberry.mutation(
        extensions=allow(Permission.UpdateRole),
        description=(
            "Changes a role. The caller must hold UpdateRole and the role's permissions, before and after, on "
            "each of its channels, before and after (FORBIDDEN otherwise). Clears the session cache, so the "
            "users' sessions carry the new permissions."
        ),
    )
    async def update_role(
        self, info: Info, input: Annotated[UpdateRoleInput, strawberry.argument(description="The changes.")]
    ) -> Role:
        role = await info.context.services.roles.update(
            parse_id(input.id, "Role"),
            description=input.description if _given(input.description) else None,
            permissions=input.permissions if _given(input.permissions) else None,
            channel_ids=parse_ids(input.channel_ids, "Channel") if _given(input.channel_ids) else None,  # type: ignore[arg-type]
            actor=actor(info),
        )
        return Role.from_domain(role)

    @strawberry.mutation(
        extensions=allow(Permission.CreateUser),
        description=(
            "Creates a user; an identifier already taken is BAD_USER_INPUT. Needs CreateUser, and what each "
            "role given grants."
        ),
    )
    async def create_user(
        self, info: Info, input: Annotated[CreateUserInput, strawberry.argument(description="The user.")]
    ) -> User:
        user = await info.context.services.users.create(
            identifier=input.identifier,
            password=input.password if _given(input.password) else None,
            verified=input.verified if _given(input.verified) else True,  # type: ignore[arg-type]
            role_ids=parse_ids(input.role_ids, "Role") if _given(input.role_ids) else [],  # type: ignore[arg-type]
            actor=actor(info),
        )
        return User.from_domain(user)
