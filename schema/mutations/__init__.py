from __future__ import annotations

import strawberry

from schema.mutations.admin import AdminMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.order import OrderMutations
from schema.mutations.session import SessionMutations
from schema.mutations.user import UserMutations


@strawberry.type
class Mutation(SessionMutations, AuthMutations, AdminMutations, OrderMutations, UserMutations):
    pass


__all__ = ["Mutation"]
