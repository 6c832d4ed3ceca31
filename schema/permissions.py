"""Authorisation declared on fields: Vendure's @Allow, plus the session and self-service rules."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from models import Permission
from schema.context import Info
from server.services.actor import Actor
from server.services.errors import ForbiddenError


class _Denying(BasePermission):
    message = ForbiddenError().message

    def on_unauthorized(self) -> None:
        raise ForbiddenError()


class Allow(_Denying):
    """Any one of the permissions suffices. Public lets anyone in, Owner creates a guest session when
    there is none, Authenticated needs a logged-in user, SuperAdmin holds every permission."""

    def __init__(self, *permissions: Permission) -> None:
        self.permissions = frozenset(permissions)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        if Permission.Public in self.permissions:
            return True
        if Permission.Owner in self.permissions:
            await context.ensure_session()
            return True
        session = context.session
        if session is None or session.user is None:
            return False
        if Permission.Authenticated in self.permissions:
            return True
        held = context.permissions
        return Permission.SuperAdmin in held or not self.permissions.isdisjoint(held)


class HasSession(_Denying):
    """The request carries a valid session token (guest or user)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.session is not None


class AllowOrSelf(Allow):
    """As Allow, or the caller is the user named by the `user_id` argument."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        session = info.context.session
        if session is not None and session.user is not None and str(session.user.id) == str(kwargs.get("user_id")):
            return True
        return await super().has_permission(source, info, **kwargs)


def actor(info: Info) -> Actor:
    """The caller, for the services to check what they may grant (see server/services/actor.py)."""
    session = info.context.session
    return Actor.of(None if session is None else session.user)


def allow(*permissions: Permission) -> list[FieldExtension]:
    if Permission.Public in permissions:
        return []  # nothing to check: skipping the extension keeps public fields on the fast path
    return [PermissionExtension(permissions=[Allow(*permissions)], use_directives=False)]


def allow_or_self(*permissions: Permission) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[AllowOrSelf(*permissions)], use_directives=False)]


def has_session() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[HasSession()], use_directives=False)]
