"""Authorisation declared on fields: Vendure's @Allow, plus the session, self-service and fresh-proof rules.

An operation that demands a fresh proof (`allow(..., fresh=True)`, `allow_or_self(..., fresh_for_others=True)`,
or `require_fresh_proof` where the need depends on what the operation finds) checks the permission first,
then the proof: a caller one permission short gets plain FORBIDDEN, never a hint to reauthenticate."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from models import Permission
from schema.context import Info
from server.services.actor import Actor
from server.services.errors import ForbiddenError, FreshAuthenticationRequiredError


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


class FreshProof(BasePermission):
    """The caller proved their password within SESSION_FRESH_AGE (see server/services/fresh_proof.py)."""

    message = FreshAuthenticationRequiredError().message

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.services.fresh_proof.is_fresh(info.context.session)

    def on_unauthorized(self) -> None:
        raise FreshAuthenticationRequiredError()


class AllowOrSelf(Allow):
    """As Allow, or the caller is the user named by the `user_id` argument; `fresh_for_others`: acting on
    another user also demands a fresh proof (checked after the permission)."""

    def __init__(self, *permissions: Permission, fresh_for_others: bool = False) -> None:
        super().__init__(*permissions)
        self.fresh_for_others = fresh_for_others

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        session = info.context.session
        if session is not None and session.user is not None and str(session.user.id) == str(kwargs.get("user_id")):
            return True
        if not await super().has_permission(source, info, **kwargs):
            return False
        if self.fresh_for_others:
            require_fresh_proof(info)
        return True


def require_fresh_proof(info: Info) -> None:
    """FORBIDDEN with reason FRESH_AUTHENTICATION_REQUIRED unless the caller's password proof is fresh;
    for operations whose need of one depends on what they find (call it after the permission check)."""
    info.context.services.fresh_proof.check(info.context.session)


def actor(info: Info) -> Actor:
    """The caller, for the services to check what they may grant (see server/services/actor.py)."""
    session = info.context.session
    return Actor.of(None if session is None else session.user)


def allow(*permissions: Permission, fresh: bool = False) -> list[FieldExtension]:
    """Any one of `permissions`; `fresh`: then also a fresh password proof (checked in that order)."""
    if Permission.Public in permissions and not fresh:
        return []  # nothing to check: skipping the extension keeps public fields on the fast path
    checks: list[BasePermission] = [Allow(*permissions), FreshProof()] if fresh else [Allow(*permissions)]
    return [PermissionExtension(permissions=checks, use_directives=False)]


def allow_or_self(*permissions: Permission, fresh_for_others: bool = False) -> list[FieldExtension]:
    check = AllowOrSelf(*permissions, fresh_for_others=fresh_for_others)
    return [PermissionExtension(permissions=[check], use_directives=False)]


def has_session() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[HasSession()], use_directives=False)]
