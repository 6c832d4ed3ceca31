from __future__ import annotations

import strawberry

from schema.enums import Permission


@strawberry.input
class CreateChannelInput:
    code: str
    token: str | None = strawberry.UNSET


@strawberry.input
class CreateRoleInput:
    code: str
    permissions: list[Permission]
    channel_ids: list[strawberry.ID]
    description: str | None = strawberry.UNSET


@strawberry.input
class UpdateRoleInput:
    id: strawberry.ID
    description: str | None = strawberry.UNSET
    permissions: list[Permission] | None = strawberry.UNSET
    channel_ids: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.input
class CreateUserInput:
    identifier: str
    password: str | None = strawberry.UNSET
    verified: bool | None = strawberry.UNSET
    role_ids: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.input
class UpdateUserInput:
    id: strawberry.ID
    identifier: str | None = strawberry.UNSET
    password: str | None = strawberry.UNSET
    verified: bool | None = strawberry.UNSET
    role_ids: list[strawberry.ID] | None = strawberry.UNSET
