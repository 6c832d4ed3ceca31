"""`create-user` and `set-password`: an operator's way to the user service, with the API's rules."""

from __future__ import annotations

import argparse
import asyncio

from models import Channel, Permission, Role, User
from server.commands.base import EXIT_OK, CommandError, Subcommands, services_on_the_database
from server.commands.password_input import read_new_password
from server.services import Services
from server.services.actor import Actor
from server.settings import Settings

PASSWORD_INPUT = (
    "The password is asked twice without echo when standard input is a terminal; otherwise it is the first"
    " line of standard input."
)


def register(commands: Subcommands) -> None:
    create = commands.add_parser(
        "create-user",
        help="create a user with a password and roles",
        description="Create a verified user with a password and the given roles, as createUser does. " + PASSWORD_INPUT,
    )
    create.add_argument("identifier", metavar="IDENTIFIER", help="the user's identifier (normalised as the API does)")
    create.add_argument(
        "--role",
        dest="roles",
        action="append",
        default=[],
        metavar="CODE",
        help="give the role with this code (repeatable)",
    )
    create.add_argument("--no-password", action="store_true", help="no password: no native login until set-password")
    create.add_argument("--unverified", action="store_true", help="create the user unverified")
    create.set_defaults(run=create_user)

    set_password = commands.add_parser(
        "set-password",
        help="set a user's password and end their sessions",
        description="Set the password of a user and end all of their sessions, in the database and the session"
        " cache. " + PASSWORD_INPUT,
    )
    set_password.add_argument("identifier", metavar="IDENTIFIER", help="the user's identifier")
    set_password.set_defaults(run=set_user_password)


def create_user(args: argparse.Namespace, settings: Settings) -> int:
    user = asyncio.run(_create_user(settings, args.identifier, args.roles, not args.no_password, not args.unverified))
    roles = ", ".join(role.code for role in user.roles) or "none"
    print(f"created the user {user.identifier!r} (id {user.id}); roles: {roles}")
    return EXIT_OK


def set_user_password(args: argparse.Namespace, settings: Settings) -> int:
    identifier = asyncio.run(_set_password(settings, args.identifier))
    print(f"set the password of {identifier!r} and ended their sessions")
    return EXIT_OK


async def find_user(services: Services, identifier: str) -> User:
    """The user `identifier` names; CommandError when there is none."""
    user = await services.users.find_by_identifier(identifier)
    if user is None:
        raise CommandError(f"no user has the identifier {identifier.strip()!r}")
    return user


async def operator() -> Actor:
    """Whoever runs these commands reaches the database itself: they hold everything, on every channel."""
    channels = await Channel.all().only("id")
    return Actor({channel.id: frozenset({Permission.SuperAdmin}) for channel in channels})


async def _create_user(settings: Settings, identifier: str, codes: list[str], password: bool, verified: bool) -> User:
    async with services_on_the_database(settings) as services:
        if await services.users.find_by_identifier(identifier) is not None:
            raise CommandError(f"a user with the identifier {identifier.strip()!r} already exists")
        role_ids = await _role_ids(codes)
        secret = read_new_password() if password else None
        return await services.users.create(identifier, secret, verified, role_ids, actor=await operator())


async def _set_password(settings: Settings, identifier: str) -> str:
    async with services_on_the_database(settings, changes_sessions=True) as services:
        user = await find_user(services, identifier)
        password = read_new_password()
        await services.users.update(user.id, password=password, actor=await operator())
        return user.identifier


async def _role_ids(codes: list[str]) -> list[int]:
    wanted = list(dict.fromkeys(code.strip() for code in codes))
    roles = {role.code: role.id for role in await Role.filter(code__in=wanted)} if wanted else {}
    missing = [code for code in wanted if code not in roles]
    if missing:
        raise CommandError("no role has the code " + ", ".join(map(repr, missing)))
    return [roles[code] for code in wanted]
