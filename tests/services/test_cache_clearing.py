"""SessionService.clear_cache: after a Role or Channel change, cached permissions are not served."""

from __future__ import annotations

from models import Permission, Role
from server.cached_session import CachedSession
from server.services.actor import Actor
from tests.services.support import Kit, make_role, make_user

P = Permission


async def test_clear_cache_forgets_every_cached_session(kit: Kit) -> None:
    sessions = [await kit.sessions.create_anonymous_session() for _ in range(3)]

    await kit.sessions.clear_cache()

    assert [kit.cache.peek(s.token) for s in sessions] == [None, None, None]
    assert [await kit.sessions.get_session_from_token(s.token) for s in sessions] == sessions


async def test_role_update_means_the_next_lookup_has_the_new_permissions(kit: Kit) -> None:
    # given alice's cached session with the buyer role's permissions
    default = await kit.default_channel()
    role = await make_role("buyer", [P.ReadOrder], default)
    session = await kit.login(await make_user("alice", role))
    assert await kit.sessions.get_session_from_token(session.token) == session

    # when the role gains a permission
    await kit.roles.update(
        role.id, permissions=[P.ReadOrder, P.UpdateOrder], actor=Actor({default.id: frozenset({P.SuperAdmin})})
    )

    # then the next lookup carries it
    found = await kit.sessions.get_session_from_token(session.token)
    assert found is not None and found.user is not None
    assert found.user.permissions_on(default.id) == {P.ReadOrder, P.UpdateOrder}


async def test_role_losing_a_channel_is_seen_at_the_next_lookup(kit: Kit) -> None:
    default = await kit.default_channel()
    eu = await kit.channels.create("eu")
    role = await make_role("buyer", [P.ReadOrder], default, eu)
    session = await kit.login(await make_user("alice", role))

    superadmin = Actor({channel.id: frozenset({P.SuperAdmin}) for channel in (default, eu)})
    await kit.roles.update(role.id, channel_ids=[default.id], actor=superadmin)

    found = await kit.sessions.get_session_from_token(session.token)
    assert found is not None and found.user is not None
    assert [c.id for c in found.user.channel_permissions] == [default.id]


async def test_without_clearing_a_role_change_stays_hidden_by_the_cache(kit: Kit) -> None:
    # the control for the tests above: a role changed behind the services' back is not seen
    default = await kit.default_channel()
    role = await make_role("buyer", [P.ReadOrder], default)
    session = await kit.login(await make_user("alice", role))

    await Role.filter(id=role.id).update(permissions=["ReadOrder", "UpdateOrder"])

    found = await kit.sessions.get_session_from_token(session.token)
    assert found is not None and found.user is not None
    assert found.user.permissions_on(default.id) == {P.ReadOrder}


async def test_new_channel_appears_in_a_cached_superadmin_session(kit: Kit) -> None:
    outcome = await kit.auth.login(await kit.ctx(), "superadmin", "superadmin")
    assert isinstance(outcome, CachedSession)

    channel = await kit.channels.create("eu")

    found = await kit.sessions.get_session_from_token(outcome.token)
    assert found is not None and found.user is not None
    assert P.SuperAdmin in found.user.permissions_on(channel.id)
