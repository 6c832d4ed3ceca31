"""The output types of the contract, each built from its domain object."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import Channel as ChannelModel
from models import Order as OrderModel
from models import Permission as PermissionValue
from models import Role as RoleModel
from models import User as UserModel
from schema.derived import object_type
from schema.enums import ErrorCode, Permission
from server.cached_session import CachedSession as CachedSessionValue
from server.cached_session import CachedSessionUser as CachedSessionUserValue
from server.cached_session import UserChannelPermissions as UserChannelPermissionsValue
from server.services import auth

if TYPE_CHECKING:  # resolvers return the domain values themselves (see schema/derived.py)
    UserChannelPermissions = UserChannelPermissionsValue
    CachedSessionUser = CachedSessionUserValue
    CachedSession = CachedSessionValue
else:
    UserChannelPermissions = object_type(UserChannelPermissionsValue)
    CachedSessionUser = object_type(CachedSessionUserValue)
    CachedSession = object_type(CachedSessionValue, exclude=frozenset({"cache_key"}))


def _optional_id(value: int | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.interface
class ErrorResult:
    error_code: ErrorCode
    message: str


@strawberry.type
class InvalidCredentialsError(ErrorResult):
    authentication_error: str


@strawberry.type
class NotVerifiedError(ErrorResult):
    pass


LoginResult = Annotated[CachedSession | InvalidCredentialsError | NotVerifiedError, strawberry.union("LoginResult")]


def login_result(outcome: auth.LoginOutcome) -> CachedSession | InvalidCredentialsError | NotVerifiedError:
    if isinstance(outcome, auth.InvalidCredentials):
        return InvalidCredentialsError(
            error_code=ErrorCode.INVALID_CREDENTIALS_ERROR,
            message="The provided credentials are invalid",
            authentication_error=outcome.authentication_error,
        )
    if isinstance(outcome, auth.NotVerified):
        return NotVerifiedError(
            error_code=ErrorCode.NOT_VERIFIED_ERROR, message="Please verify this email address before logging in"
        )
    return outcome


@strawberry.type
class Success:
    success: bool


@strawberry.type
class Channel:
    id: strawberry.ID
    code: str
    token: str

    @classmethod
    def from_domain(cls, channel: ChannelModel) -> Channel:
        return cls(id=strawberry.ID(str(channel.id)), code=channel.code, token=channel.token)


@strawberry.type
class Role:
    id: strawberry.ID
    code: str
    description: str
    permissions: list[Permission]
    channels: list[Channel]

    @classmethod
    def from_domain(cls, role: RoleModel) -> Role:
        return cls(
            id=strawberry.ID(str(role.id)),
            code=role.code,
            description=role.description,
            permissions=[PermissionValue(p) for p in role.permissions],
            channels=[Channel.from_domain(c) for c in sorted(role.channels, key=lambda c: c.id)],
        )


@strawberry.type
class User:
    id: strawberry.ID
    identifier: str
    verified: bool
    last_login: datetime | None
    roles: list[Role]

    @classmethod
    def from_domain(cls, user: UserModel) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            identifier=user.identifier,
            verified=user.verified,
            last_login=user.last_login,
            roles=[Role.from_domain(r) for r in sorted(user.roles, key=lambda r: r.id)],
        )


@strawberry.type
class OrderLine:
    id: strawberry.ID
    product_variant_id: strawberry.ID
    quantity: int


@strawberry.type
class Order:
    id: strawberry.ID
    code: str
    active: bool
    user_id: strawberry.ID | None
    lines: list[OrderLine]

    @classmethod
    def from_domain(cls, order: OrderModel) -> Order:
        return cls(
            id=strawberry.ID(str(order.id)),
            code=order.code,
            active=order.active,
            user_id=_optional_id(order.user_id),  # type: ignore[attr-defined]
            lines=[
                OrderLine(
                    id=strawberry.ID(str(line.id)),
                    product_variant_id=strawberry.ID(line.product_variant_id),
                    quantity=line.quantity,
                )
                for line in sorted(order.lines, key=lambda line: line.id)
            ],
        )
