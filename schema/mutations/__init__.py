from __future__ import annotations

import strawberry

from schema.mutations.admin import AdminMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.order import OrderMutations
from schema.mutations.session import SessionMutations
from schema.mutations.session_management import SessionManagementMutations
from schema.mutations.user import UserMutations


@strawberry.type(
    description=(
        "Changing sessions, carts, users, roles and channels. A failed operation is a GraphQL error whose "
        "extensions.code is FORBIDDEN, BAD_USER_INPUT, ENTITY_NOT_FOUND or INTERNAL_SERVER_ERROR."
    )
)
class Mutation(
    SessionMutations, AuthMutations, AdminMutations, OrderMutations, UserMutations, SessionManagementMutations
):
    pass


__all__ = ["Mutation"]
