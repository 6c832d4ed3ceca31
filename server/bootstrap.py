"""Each start: the default channel, the SuperAdmin role and the superadmin user, as they must be.

The superadmin is the user marked `is_superadmin`, whatever its identifier: renamed, it stays the
superadmin and no other is made. Each start gives the SuperAdmin role every permission and every
channel again, and the marked user the role and its verification. A superadmin is created on the
first start (no SuperAdmin role yet), with the role, in one transaction. On a database that had one
and lost it (deleted behind the API's back, or unmarked by migration 0003), a new one is created only
from an explicit SUPERADMIN_PASSWORD, never with the default password: else one error line, nothing made.

SUPERADMIN_IDENTIFIER and SUPERADMIN_PASSWORD are applied when the superadmin is created, never after:
its password is changed with `python -m server set-password`. So the warning about the default password
looks at the stored hash, at every start, for as long as it accepts the default password.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shlex

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import Channel, Permission, Role, User
from server.database import startup_lock
from server.services.channel import DEFAULT_CHANNEL_CODE, SUPER_ADMIN_ROLE_CODE
from server.services.errors import UserInputError
from server.services.identifiers import normalise_identifier
from server.services.passwords import hash_password, verify_password
from server.settings import Settings, SettingsError
from server.workers import prepared_by_parent, repaired_by_parent

logger = logging.getLogger(__name__)

SUPER_ADMIN_ROLE_DESCRIPTION = "SuperAdmin"
ALL_PERMISSIONS = [permission.value for permission in Permission]
DEFAULT_PASSWORD = Settings().superadmin_password


async def bootstrap(settings: Settings) -> bool:
    """Create or repair; True when something cached sessions carry was repaired (clear the cache then).

    In a worker, its parent has done it before starting the workers (server/workers.py): only its answer.
    """
    if prepared_by_parent():
        return repaired_by_parent()
    identifier = _superadmin_identifier(settings)
    default_password = settings.superadmin_password == DEFAULT_PASSWORD
    # One instance at a time: concurrent first starts would race on the role's channel link.
    async with startup_lock(settings.database_url):
        had_superadmin = await User.filter(is_superadmin=True).exists()
        channel = await _default_channel()
        role = await Role.filter(code=SUPER_ADMIN_ROLE_CODE).first()
        if role is None:
            role = await _first_start(settings, identifier, channel)
        repaired = await _repair_role(role)
        repaired = await _repair_superadmin(settings, identifier, role, default_password) or repaired
    await _check_password(settings, default_password, created=not had_superadmin)
    return repaired


def _superadmin_identifier(settings: Settings) -> str:
    try:
        return normalise_identifier(settings.superadmin_identifier)
    except UserInputError as error:
        accepts = "an identifier of 1 to 255 visible characters"
        raise SettingsError("SUPERADMIN_IDENTIFIER", settings.superadmin_identifier, accepts) from error


async def _check_password(settings: Settings, default_password: bool, created: bool) -> None:
    """Warn while the superadmin's stored hash accepts the default password, and when an explicit
    SUPERADMIN_PASSWORD is not (or no longer) the superadmin's, since it is applied only at creation.
    A superadmin created by this start has SUPERADMIN_PASSWORD: no hash to check then."""
    user = await User.filter(is_superadmin=True).only("id", "identifier", "password_hash").first()
    if user is None:
        return
    if created:
        accepts_default, accepts_setting = default_password, True
    elif default_password:
        accepts_default = accepts_setting = await verify_password(user.password_hash, DEFAULT_PASSWORD)
    else:
        accepts_default, accepts_setting = await asyncio.gather(
            verify_password(user.password_hash, DEFAULT_PASSWORD),
            verify_password(user.password_hash, settings.superadmin_password),
        )
    command = f"python -m server set-password {shlex.quote(user.identifier)}"
    if accepts_default:
        logger.warning(
            "the superadmin %r still has the default password: change it with `%s` before this service faces"
            " the internet",
            user.identifier,
            command,
        )
    elif not accepts_setting:
        logger.warning(
            "SUPERADMIN_PASSWORD is not the superadmin's password: it is applied only when the superadmin is"
            " created; change the password with `%s`",
            command,
        )


async def _default_channel() -> Channel:
    channel = await Channel.filter(is_default=True).first()
    if channel is None:
        try:
            channel = await Channel.create(code=DEFAULT_CHANNEL_CODE, token=secrets.token_urlsafe(16), is_default=True)
        except IntegrityError:  # another instance created it first
            channel = await Channel.get(is_default=True)
    return channel


async def _first_start(settings: Settings, identifier: str, channel: Channel) -> Role:
    """The SuperAdmin role and the superadmin together, so no start can leave one without the other."""
    password_hash = await hash_password(settings.superadmin_password)
    try:
        async with in_transaction() as connection:
            role = await Role.create(
                code=SUPER_ADMIN_ROLE_CODE,
                description=SUPER_ADMIN_ROLE_DESCRIPTION,
                permissions=ALL_PERMISSIONS,
                using_db=connection,
            )
            await role.channels.add(channel, using_db=connection)
            user = await User.create(
                identifier=identifier,
                password_hash=password_hash,
                verified=True,
                is_superadmin=True,
                using_db=connection,
            )
            await user.roles.add(role, using_db=connection)
    except IntegrityError:  # another instance made them first
        return await Role.get(code=SUPER_ADMIN_ROLE_CODE)
    logger.info("created the superadmin user %r", identifier)
    return role


async def _repair_role(role: Role) -> bool:
    """Every permission and every channel back on the SuperAdmin role; True if it lacked any."""
    repaired = False
    if role.permissions != ALL_PERMISSIONS or role.description != SUPER_ADMIN_ROLE_DESCRIPTION:
        await Role.filter(id=role.id).update(permissions=ALL_PERMISSIONS, description=SUPER_ADMIN_ROLE_DESCRIPTION)
        repaired = True
    linked = await role.channels.all().values_list("id", flat=True)
    missing = await Channel.exclude(id__in=linked) if linked else await Channel.all()
    if missing:
        await role.channels.add(*missing)
        repaired = True
    if repaired:
        logger.warning("restored the SuperAdmin role's permissions and channels")
    return repaired


async def _repair_superadmin(settings: Settings, identifier: str, role: Role, default_password: bool) -> bool:
    """The marked user holds the role and is verified; True if it was not. Without a marked user,
    create one only from an explicit password and a free identifier."""
    user = await User.filter(is_superadmin=True).first()
    if user is not None:
        repaired = False
        if not await user.roles.filter(id=role.id).exists():
            await user.roles.add(role)
            repaired = True
        if not user.verified:
            await User.filter(id=user.id).update(verified=True)
            repaired = True
        if repaired:
            logger.warning("restored the superadmin user's SuperAdmin role and verification")
        return repaired
    if default_password:
        logger.error(
            "no superadmin user on this database (deleted, or not recognised when migrated): none is created with"
            " the default password; set SUPERADMIN_PASSWORD, and a SUPERADMIN_IDENTIFIER no user has, to create one"
        )
        return False
    if await User.filter(identifier=identifier).exists():
        logger.error(
            "no superadmin user on this database, and SUPERADMIN_IDENTIFIER %r belongs to another user:"
            " none is created; set a SUPERADMIN_IDENTIFIER no user has",
            identifier,
        )
        return False
    password_hash = await hash_password(settings.superadmin_password)
    async with in_transaction() as connection:
        user = await User.create(
            identifier=identifier, password_hash=password_hash, verified=True, is_superadmin=True, using_db=connection
        )
        await user.roles.add(role, using_db=connection)
    logger.warning("created a new superadmin user %r: this database had none", identifier)
    return False
