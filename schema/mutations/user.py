"""Users' lifecycle: an administrator updates or deletes a user, a user changes their own password."""

from __future__ import annotations

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
        description="Changes what the input gives. A new password ends all of the user's sessions.",
    )
    async def update_user(self, info: Info, input: UpdateUserInput) -> User:
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
        extensions=allow(Permission.DeleteUser), description="Deletes the user, their sessions and their orders."
    )
    async def delete_user(self, info: Info, id: strawberry.ID) -> Success:
        await info.context.services.users.delete(parse_id(id, "User"), actor=actor(info))
        return Success(success=True)

    @strawberry.mutation(
        extensions=allow(Permission.Authenticated),
        description=(
            "The caller changes their own password; false when currentPassword is wrong. "
            "Ends the caller's other sessions and keeps this one. Counts as a login attempt."
        ),
    )
    async def change_password(self, info: Info, current_password: str, new_password: str) -> Success:
        context = info.context
        assert context.session is not None
        changed = await context.services.users.change_password(
            context.session, current_password, new_password, context.request_context.client_address
        )
        return Success(success=changed)
