"""ChannelService, RoleService and UserService: validation, lookups and password storage."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from models import Channel, Permission, Role, User
from server.services.actor import Actor
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.errors import EntityNotFoundError, UserInputError
from tests.services.support import Kit

P = Permission
PASSWORD = "correct horse battery staple"


def superadmin_on(*channels: Channel) -> Actor:
    """An actor holding SuperAdmin on the channels: these tests are not about who may grant."""
    return Actor({channel.id: frozenset({P.SuperAdmin}) for channel in channels})


async def test_channel_with_a_duplicate_code_is_rejected(kit: Kit) -> None:
    await kit.channels.create("eu", token="eu-token")

    with pytest.raises(UserInputError):
        await kit.channels.create("eu", token="other-token")
    assert await Channel.filter(code="eu").count() == 1


async def test_channel_with_a_duplicate_token_is_rejected(kit: Kit) -> None:
    await kit.channels.create("eu", token="shared-token")

    with pytest.raises(UserInputError):
        await kit.channels.create("us", token="shared-token")
    assert await Channel.filter(code="us").exists() is False


async def test_new_channel_is_granted_to_the_super_admin_role(kit: Kit) -> None:
    channel = await kit.channels.create("eu")

    role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
    assert channel.id in {c.id for c in await role.channels.all()}


async def test_channel_is_found_by_its_token_and_the_default_without_one(kit: Kit) -> None:
    channel = await kit.channels.create("eu", token="eu-token")

    assert (await kit.channels.get_channel_from_token("eu-token")) == channel
    assert (await kit.channels.get_channel_from_token(None)) == await Channel.get(is_default=True)
    assert await kit.channels.get_channel_from_token("no-such-token") is None


async def test_role_with_a_duplicate_code_is_rejected(kit: Kit) -> None:
    await kit.roles.create("buyer", None, [P.ReadOrder], [])

    with pytest.raises(UserInputError):
        await kit.roles.create("buyer", None, [P.UpdateOrder], [])
    assert await Role.filter(code="buyer").count() == 1


async def test_role_on_an_unknown_channel_is_not_found(kit: Kit) -> None:
    with pytest.raises(EntityNotFoundError):
        await kit.roles.create("buyer", None, [P.ReadOrder], [999_999])
    assert await Role.filter(code="buyer").exists() is False


async def test_updating_an_unknown_role_is_not_found(kit: Kit) -> None:
    with pytest.raises(EntityNotFoundError):
        await kit.roles.update(999_999, description="x")


async def test_updating_a_role_onto_an_unknown_channel_is_not_found_and_changes_nothing(kit: Kit) -> None:
    default = await kit.default_channel()
    role = await kit.roles.create("buyer", None, [P.ReadOrder], [default.id], actor=superadmin_on(default))

    with pytest.raises(EntityNotFoundError):
        await kit.roles.update(
            role.id, permissions=[P.UpdateOrder], channel_ids=[default.id, 999_999], actor=superadmin_on(default)
        )
    stored = await Role.get(id=role.id)
    assert stored.permissions == ["ReadOrder"]
    assert [c.id for c in await stored.channels.all()] == [default.id]


async def test_role_permissions_are_stored_once_each_in_permission_order(kit: Kit) -> None:
    role = await kit.roles.create("buyer", "Buys", [P.UpdateOrder, P.ReadOrder, P.UpdateOrder], [])

    assert (await Role.get(id=role.id)).permissions == ["ReadOrder", "UpdateOrder"]


async def test_user_with_a_duplicate_identifier_is_rejected(kit: Kit) -> None:
    await kit.users.create("alice", PASSWORD)

    with pytest.raises(UserInputError):
        await kit.users.create("  alice ", "another password")
    assert await User.filter(identifier="alice").count() == 1


async def test_user_with_an_unknown_role_is_not_found(kit: Kit) -> None:
    with pytest.raises(EntityNotFoundError):
        await kit.users.create("alice", PASSWORD, role_ids=[999_999])
    assert await User.filter(identifier="alice").exists() is False


async def test_user_is_created_with_the_given_roles(kit: Kit) -> None:
    role = await kit.roles.create("buyer", None, [P.ReadOrder], [])

    user = await kit.users.create("alice", PASSWORD, role_ids=[role.id])

    assert [r.id for r in user.roles] == [role.id]


async def test_password_is_stored_as_an_argon2id_hash_never_in_clear(kit: Kit) -> None:
    user = await kit.users.create("alice", PASSWORD)

    stored = await User.get(id=user.id).values()
    password_hash = stored["password_hash"]
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, PASSWORD) is True
    assert all(PASSWORD not in str(value) for value in stored.values())


async def test_user_created_without_a_password_has_no_hash(kit: Kit) -> None:
    user = await kit.users.create("sso-only", None)

    assert (await User.get(id=user.id)).password_hash is None


async def test_bootstrapped_superadmin_password_is_hashed(kit: Kit) -> None:
    password_hash = (await User.get(identifier="superadmin")).password_hash

    assert password_hash is not None and password_hash.startswith("$argon2id$")
    assert "superadmin" not in password_hash
