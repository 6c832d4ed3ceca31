"""Who asks for an administrative change, and what they may grant.

Granting is giving permissions on channels: putting them in a role, putting a role on a channel,
giving a role to a user. An actor may grant, and may change or take back, only what they hold
themselves on every channel concerned, as Vendure's RoleService allows. Holding SuperAdmin on a
channel counts as holding every permission there; every logged-in user holds the pseudo-permissions
Authenticated, Owner and Public. The SuperAdmin permission itself is never granted to a role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from models import Permission, Role
from server.cached_session import CachedSessionUser
from server.services.errors import ForbiddenError

#: What every logged-in user holds on every channel (schema/permissions.py lets them all in).
IMPLICIT_PERMISSIONS = frozenset({Permission.Authenticated, Permission.Owner, Permission.Public})
_PERMISSION_VALUES = frozenset(permission.value for permission in Permission)


@dataclass(frozen=True, slots=True)
class Actor:
    """The permissions the caller holds, by channel id."""

    held: Mapping[int, frozenset[Permission]] = field(default_factory=dict)
    #: the caller's user id, recorded as the actor of the session events their changes cause
    user_id: int | None = None

    @classmethod
    def of(cls, user: CachedSessionUser | None) -> Actor:
        """The session user as an actor; with no user, an actor that holds nothing."""
        if user is None:
            return NOBODY
        return cls({entry.id: frozenset(entry.permissions) for entry in user.channel_permissions}, user.id)

    def holds(self, permissions: Iterable[Permission], channel_ids: Iterable[int]) -> bool:
        wanted = frozenset(permissions) - IMPLICIT_PERMISSIONS
        for channel_id in channel_ids:
            held = self.held.get(channel_id, frozenset())
            if Permission.SuperAdmin not in held and not wanted <= held:
                return False
        return True

    def check_holds(self, permissions: Iterable[Permission], channel_ids: Iterable[int]) -> None:
        """FORBIDDEN unless the actor holds every one of `permissions` on every one of the channels."""
        if not self.holds(permissions, channel_ids):
            raise ForbiddenError("You may grant or change only permissions you hold on every channel concerned")

    def check_holds_roles(self, roles: Iterable[Role]) -> None:
        """FORBIDDEN unless the actor holds what each role grants (its channels must be fetched)."""
        for role in roles:
            self.check_holds(role_permissions(role), [channel.id for channel in role.channels])


#: The actor that holds nothing: the default of the services, so code that forgets to say who acts
#: can grant nothing.
NOBODY = Actor()


def role_permissions(role: Role) -> frozenset[Permission]:
    """The role's stored permissions that this version knows (an unknown value grants nothing)."""
    return frozenset(Permission(value) for value in role.permissions if value in _PERMISSION_VALUES)
