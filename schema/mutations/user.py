"""Users' lifecycle: an administrator updates or deletes a user, a user changes their own password."""

from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.ids import parse_id, parse_ids
from schema.inputs import UpdateUserInput
from schema.permissions import actor, allow
from schema.types import Success, User


def _given(value: object) -> bool:
    return value is not strawberry.UNSET and value is not None


@strawberry.type
class UserMutations:
    @strawberry.mutation(
        extensions=allow(Permission.UpdateUser),
        description=(
            "Changes what the input gives. A new password ends all of the user's sessions; a new identifier, "
            "verification or roles clear the session cache. The caller must hold everything the user holds and "
            "what each role given grants (FORBIDDEN otherwise). Needs UpdateUser."
        ),
    )
    async def update_user(
        self, info: Info, input: Annotated[UpdateUserInput, strawberry.argument(description="The changes.")]
    ) -> User:
        user = await info.context.services.users.update(
            parse_id(input.id, "User"),
            identifier=input.identifier if _given(input.identifier) else None,
            password=input.password if _given(input.password) else None,
            verified=input.verified if _given(input.verified) else None,
            role_ids=parse_ids(input.role_ids, "Role") if _given(input.role_ids) else None,  # type: ignore[arg-type]
            actor=actor(info),
        )
        return User.from_domain(user)

    @strawberry.mutation(
        extensions=allow(Permission.DeleteUser, fresh=True),
        description=(
            "Deletes the user, their sessions (the tokens stop working at once) and their orders; success is "
            "true. The caller must hold everything the user holds; the superadmin user cannot be deleted "
            "(FORBIDDEN). Needs DeleteUser, then a password proof younger than SESSION_FRESH_AGE (FORBIDDEN, "
            "extensions.reason FRESH_AUTHENTICATION_REQUIRED)."
        ),
    )
    async def delete_user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The user (ENTITY_NOT_FOUND if unknown).")],
    ) -> Success:
        await info.context.services.users.delete(parse_id(id, "User"), actor=actor(info))
        return Success(success=True)

    @strawberry.mutation(
        extensions=allow(Permission.Authenticated, fresh=True),
        description=(
            "The caller changes their own password; success is false when currentPassword is wrong. "
            "Ends the caller's other sessions and keeps this one. Counts as a login attempt, rate limited as "
            "login is. Needs a logged-in user (Authenticated), then a password proof younger than "
            "SESSION_FRESH_AGE (FORBIDDEN, extensions.reason FRESH_AUTHENTICATION_REQUIRED)."
        ),
    )
    async def change_password(
        self,
        info: Info,
        current_password: Annotated[str, strawberry.argument(description="The caller's password now.")],
        new_password: Annotated[str, strawberry.argument(description="The new password, 1 to 1024 characters.")],
    ) -> Success:
        context = info.context
        assert context.session is not None
        changed = await context.services.users.change_password(
            context.session, current_password, new_password, context.request_context.client_address
        )
        return Success(success=changed)
