"""The bootstrap keeps the superadmin by its mark and repairs it on every start, but never brings back
a default-password administrator.

Each test starts the real app (lifespan, migrations, bootstrap), changes the database as an attack
or an accident left it, then restarts the app on the same database and checks what came back.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from models import Channel, Permission, Role, User
from server.app import create_app
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.settings import Settings, SettingsError
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient
from tests.live_server import REPO_ROOT, SERVER_SETTINGS
from tests.schema.helpers import SUPERADMIN

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename ... on CachedSession { token user { id identifier channelPermissions { permissions } } }
  }
}
"""
CREATE_CHANNEL = "mutation CreateChannel($code: String!) { createChannel(input: {code: $code}) { id } }"
UPDATE_USER = "mutation UpdateUser($input: UpdateUserInput!) { updateUser(input: $input) { identifier } }"
DELETE_USER = "mutation DeleteUser($id: ID!) { deleteUser(id: $id) { success } }"
SESSION_FROM_TOKEN = "query S($token: String!) { sessionFromToken(token: $token) { id } }"
EVERY_PERMISSION = [permission.value for permission in Permission]
EXPLICIT_PASSWORD = "an-explicit-Password-1"


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """One start of the app, stopped at the end of the block: two blocks in a row are a restart."""
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http_client:
            http_client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            yield GraphQLClient(http_client)


async def login(client: GraphQLClient, username: str, password: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.ok(LOGIN, {"username": username, "password": password}))["login"]
    return result


async def superadmin_id(client: GraphQLClient) -> str:
    user_id: str = (await login(client, *SUPERADMIN))["user"]["id"]
    return user_id


async def identifiers() -> list[str]:
    return [user.identifier for user in await User.all().order_by("id")]


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings(login_rate_limit=None)


def bootstrap_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "server.bootstrap" and r.levelno >= logging.ERROR]


async def test_a_restart_gives_the_super_admin_role_and_the_superadmin_back_what_was_stripped(
    settings: Settings,
) -> None:
    # given the SuperAdmin role stripped of its permissions and channels, and the superadmin of the
    # role and its verification, as the escalation of issue 7 left them
    async with running(settings) as client:
        await client.ok(CREATE_CHANNEL, {"code": "eu"}, token=(await login(client, *SUPERADMIN))["token"])
        role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
        await Role.filter(id=role.id).update(permissions=[], description="owned")
        await role.channels.clear()
        stripped = await login(client, *SUPERADMIN)
        assert (await client.execute(CREATE_CHANNEL, {"code": "us"}, token=stripped["token"])).codes == ["FORBIDDEN"]
        user = await User.get(is_superadmin=True)
        await user.roles.clear()
        await User.filter(id=user.id).update(verified=False)

    # when the service restarts
    async with running(settings) as client:
        # then the role holds every permission on every channel, and the superadmin holds the role again,
        # also in the session that was cached while it was stripped
        role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
        assert (role.permissions, role.description) == (EVERY_PERMISSION, "SuperAdmin")
        assert sorted(c.id for c in await role.channels.all()) == sorted(c.id for c in await Channel.all())
        assert (await client.execute(CREATE_CHANNEL, {"code": "us"}, token=stripped["token"])).errors is None
        session = await login(client, *SUPERADMIN)
        assert [c["permissions"] for c in session["user"]["channelPermissions"]] == [EVERY_PERMISSION] * 3


async def test_a_renamed_superadmin_stays_the_superadmin_and_no_default_one_comes_back(settings: Settings) -> None:
    async with running(settings) as client:
        admin = await login(client, *SUPERADMIN)
        renamed = await client.ok(
            UPDATE_USER, {"input": {"id": admin["user"]["id"], "identifier": "root"}}, token=admin["token"]
        )
        assert renamed == {"updateUser": {"identifier": "root"}}

    # restarted without SUPERADMIN_PASSWORD
    async with running(settings) as client:
        assert (await login(client, *SUPERADMIN))["__typename"] == "InvalidCredentialsError"
        root = await login(client, "root", SUPERADMIN[1])
        assert root["user"]["id"] == admin["user"]["id"]
        assert (await client.execute(CREATE_CHANNEL, {"code": "eu"}, token=root["token"])).errors is None
        assert await identifiers() == ["root"]


async def test_the_api_cannot_delete_the_superadmin(settings: Settings) -> None:
    async with running(settings) as client:
        admin = await login(client, *SUPERADMIN)
        deleted = await client.execute(DELETE_USER, {"id": admin["user"]["id"]}, token=admin["token"])
        assert deleted.codes == ["FORBIDDEN"]
        assert await User.filter(is_superadmin=True).count() == 1


async def test_a_lost_superadmin_is_not_recreated_with_the_default_password(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given a database whose superadmin is gone (deleted behind the API's back) and another user
    async with running(settings) as client:
        await User.filter(is_superadmin=True).delete()
        await User.create(identifier="clerk", verified=True)

    # when the service restarts without SUPERADMIN_PASSWORD
    caplog.clear()
    async with running(settings) as client:
        # then nobody is created, and one error line says why
        assert (await login(client, *SUPERADMIN))["__typename"] == "InvalidCredentialsError"
        assert await identifiers() == ["clerk"]
    errors = bootstrap_errors(caplog)
    assert len(errors) == 1 and "none is created with the default password" in errors[0]


async def test_a_lost_superadmin_is_recreated_from_an_explicit_password_and_a_free_identifier(
    make_settings: SettingsFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(settings):
        await User.filter(is_superadmin=True).delete()
        await User.create(identifier="superadmin", verified=True)  # someone else took the name meanwhile

    caplog.clear()
    explicit = make_settings(login_rate_limit=None, superadmin_password=EXPLICIT_PASSWORD)
    async with running(explicit) as client:
        assert await User.filter(is_superadmin=True).count() == 0
    errors = bootstrap_errors(caplog)
    assert len(errors) == 1 and "belongs to another user" in errors[0]

    elsewhere = make_settings(
        login_rate_limit=None, superadmin_password=EXPLICIT_PASSWORD, superadmin_identifier="Chief"
    )
    async with running(elsewhere) as client:
        chief = await login(client, "CHIEF", EXPLICIT_PASSWORD)
        assert chief["user"]["identifier"] == "chief"
        assert (await client.execute(CREATE_CHANNEL, {"code": "eu"}, token=chief["token"])).errors is None
        assert [user.identifier for user in await User.filter(is_superadmin=True)] == ["chief"]


async def test_the_superadmin_identifier_is_normalised(make_settings: SettingsFactory) -> None:
    async with running(make_settings(superadmin_identifier=" Root@Example.COM ")) as client:
        session = await login(client, "ＲＯＯＴ@example.com", SUPERADMIN[1])
        assert session["user"]["identifier"] == "root@example.com"


async def test_a_superadmin_identifier_with_an_invisible_character_is_a_settings_error(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(SettingsError, match="SUPERADMIN_IDENTIFIER"):
        async with running(make_settings(superadmin_identifier="root\u200b")):
            pass


DEFAULT_PASSWORD_WARNING = (
    "the superadmin 'superadmin' still has the default password: change it with"
    " `python -m server set-password superadmin` before this service faces the internet"
)
NOT_THE_SUPERADMINS_PASSWORD = (
    "SUPERADMIN_PASSWORD is not the superadmin's password: it is applied only when the superadmin is created;"
    " change the password with `python -m server set-password superadmin`"
)


def bootstrap_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "server.bootstrap" and r.levelno == logging.WARNING]


def set_password(settings: Settings, identifier: str, password: str) -> subprocess.CompletedProcess[str]:
    """`python -m server set-password` as an operator runs it, on the settings' database and cache."""
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(
        DATABASE_URL=settings.database_url,
        SESSION_CACHE=settings.session_cache,
        SESSION_CACHE_NAMESPACE=settings.session_cache_namespace,
    )
    return subprocess.run(
        [sys.executable, "-m", "server", "set-password", identifier],
        cwd=REPO_ROOT,
        env=env,
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_default_password_warning_is_logged_at_every_start_while_the_stored_hash_accepts_it(
    make_settings: SettingsFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given a first start with the default password
    async with running(settings):
        pass
    assert bootstrap_warnings(caplog) == [DEFAULT_PASSWORD_WARNING]

    # when the service restarts with SUPERADMIN_PASSWORD set
    caplog.clear()
    explicit = make_settings(login_rate_limit=None, superadmin_password=EXPLICIT_PASSWORD)
    async with running(explicit) as client:
        # then the password was not changed (it applies at creation), and both warnings say so
        assert (await login(client, *SUPERADMIN))["__typename"] == "CachedSession"
        assert (await login(client, "superadmin", EXPLICIT_PASSWORD))["__typename"] == "InvalidCredentialsError"
    assert bootstrap_warnings(caplog) == [DEFAULT_PASSWORD_WARNING]

    caplog.clear()
    async with running(settings):
        pass
    assert bootstrap_warnings(caplog) == [DEFAULT_PASSWORD_WARNING]


async def test_set_password_ends_the_default_password_warning_and_its_sessions(
    make_settings: SettingsFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given a superadmin on the default password, logged in
    async with running(settings) as client:
        session = await login(client, *SUPERADMIN)

    # when the operator sets its password
    result = set_password(settings, "superadmin", EXPLICIT_PASSWORD)
    assert (result.returncode, result.stdout) == (0, "set the password of 'superadmin' and ended their sessions\n")

    # then no start warns about the default password, the session has ended, only the new password logs in
    caplog.clear()
    async with running(settings) as client:
        assert (await client.ok(SESSION_FROM_TOKEN, {"token": session["token"]})) == {"sessionFromToken": None}
        assert (await login(client, *SUPERADMIN))["__typename"] == "InvalidCredentialsError"
        assert (await login(client, "superadmin", EXPLICIT_PASSWORD))["__typename"] == "CachedSession"
    assert bootstrap_warnings(caplog) == [NOT_THE_SUPERADMINS_PASSWORD]  # SUPERADMIN_PASSWORD is still the default

    caplog.clear()
    async with running(make_settings(login_rate_limit=None, superadmin_password=EXPLICIT_PASSWORD)):
        pass
    assert bootstrap_warnings(caplog) == []


async def test_a_first_start_with_an_explicit_password_warns_about_nothing(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(make_settings(login_rate_limit=None, superadmin_password=EXPLICIT_PASSWORD)) as client:
        assert (await login(client, "superadmin", EXPLICIT_PASSWORD))["__typename"] == "CachedSession"
    assert bootstrap_warnings(caplog) == []
