"""The input types of the contract. Omitting an optional field, or giving null, leaves it unchanged
(on updates) or takes its default (on creation)."""

from __future__ import annotations

import strawberry

from schema.enums import Permission

_ROLE_IDS = "Roles to give the user (ENTITY_NOT_FOUND for an unknown one); the caller must hold what each grants."


@strawberry.input(description="A new channel.")
class CreateChannelInput:
    code: str = strawberry.field(description="Trimmed, 1 to 64 characters, unique among channels.")
    token: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Trimmed, 1 to 128 characters, unique among channels; a random token when omitted.",
    )


@strawberry.input(description="A new role.")
class CreateRoleInput:
    code: str = strawberry.field(description="Trimmed, 1 to 64 characters, unique among roles.")
    permissions: list[Permission] = strawberry.field(
        description="What the role grants. SuperAdmin cannot be granted; the caller must hold each on every channel."
    )
    channel_ids: list[strawberry.ID] = strawberry.field(
        description="The channels the permissions apply on (ENTITY_NOT_FOUND for an unknown one)."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 255 characters; empty when omitted."
    )


@strawberry.input(description="Changes to a role; what is omitted stays as it is.")
class UpdateRoleInput:
    id: strawberry.ID = strawberry.field(description="The role to change. The SuperAdmin role cannot be changed.")
    description: str | None = strawberry.field(default=strawberry.UNSET, description="At most 255 characters.")
    permissions: list[Permission] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Replaces the role's permissions. SuperAdmin cannot be granted.",
    )
    channel_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the role's channels."
    )


@strawberry.input(description="A new user.")
class CreateUserInput:
    identifier: str = strawberry.field(
        description=(
            "The login name: unique once normalised (NFKC, case-folded, trimmed), 1 to 255 characters, "
            "no invisible or control characters."
        )
    )
    password: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="1 to 1024 characters, stored only as a hash. Without one the user cannot log in with a password.",
    )
    verified: bool | None = strawberry.field(default=strawberry.UNSET, description="True when omitted.")
    role_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET, description=_ROLE_IDS)


@strawberry.input(description="Changes to a user; what is omitted stays as it is.")
class UpdateUserInput:
    id: strawberry.ID = strawberry.field(description="The user to change.")
    identifier: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new login name, under the same rules as in CreateUserInput."
    )
    password: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new password, 1 to 1024 characters. Ends all of the user's sessions."
    )
    verified: bool | None = strawberry.field(
        default=strawberry.UNSET, description="The superadmin user cannot be made unverified."
    )
    role_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Replaces the user's roles; the caller must hold what each new one grants. "
            "The superadmin user keeps the SuperAdmin role."
        ),
    )
