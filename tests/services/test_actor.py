"""The grant policy in the services: what an actor holds, and what the services refuse whoever acts."""

from __future__ import annotations

import pytest

from models import Permission, Role, User
from server.services.actor import NOBODY, Actor
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.errors import ForbiddenError, UserInputError
from tests.services.support import Kit

P = Permission


def test_an_actor_holds_its_permissions_on_its_channels_only() -> None:
    actor = Actor({1: frozenset({P.ReadOrder, P.CreateRole}), 2: frozenset({P.SuperAdmin})})

    assert actor.holds([P.ReadOrder], [1]) is True
    assert actor.holds([P.ReadOrder, P.UpdateOrder], [1]) is False
    assert actor.holds([P.ReadOrder], [1, 3]) is False
    # SuperAdmin on a channel is every permission there, and only there
    assert actor.holds([P.DeleteUser, P.SuperAdmin], [2]) is True
    assert actor.holds([P.DeleteUser], [1, 2]) is False
    # every logged-in user holds the pseudo-permissions, and no channel asks nothing
    assert actor.holds([P.Authenticated, P.Owner, P.Public], [1]) is True
    assert actor.holds([P.DeleteUser], []) is True


async def test_the_default_actor_grants_nothing(kit: Kit) -> None:
    default = await kit.default_channel()
    role = await kit.roles.create("buyer", None, [P.ReadOrder], [], actor=NOBODY)

    with pytest.raises(ForbiddenError):
        await kit.roles.create("reader", None, [P.ReadOrder], [default.id])
    with pytest.raises(ForbiddenError):
        await kit.roles.update(role.id, channel_ids=[default.id])
    assert await Role.filter(code="reader").exists() is False
    assert await (await Role.get(id=role.id)).channels.all() == []


async def test_the_super_admin_role_and_the_superadmin_are_beyond_every_actor(kit: Kit) -> None:
    default = await kit.default_channel()
    everything = Actor({default.id: frozenset({P.SuperAdmin})})
    role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
    superadmin = await User.get(is_superadmin=True)

    with pytest.raises(ForbiddenError):
        await kit.roles.update(role.id, permissions=[], actor=everything)
    with pytest.raises(UserInputError):
        await kit.roles.create("second", None, [P.SuperAdmin], [default.id], actor=everything)
    with pytest.raises(ForbiddenError):
        await kit.users.update(superadmin.id, role_ids=[], actor=everything)
    with pytest.raises(ForbiddenError):
        await kit.users.delete(superadmin.id, actor=everything)

    assert [r.id for r in await superadmin.roles.all()] == [role.id]
    assert len((await Role.get(id=role.id)).permissions) == len(Permission)
