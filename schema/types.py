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
    UserChannelPermissions = object_type(
        UserChannelPermissionsValue,
        description="What a user may do on one channel: the union of the permissions of their roles there.",
        descriptions={
            "id": "The channel's id.",
            "token": "The channel's token, as clients send it in the channel token header.",
            "code": "The channel's code.",
            "permissions": "The permissions the user holds on this channel, in the order of the Permission enum.",
        },
    )
    CachedSessionUser = object_type(
        CachedSessionUserValue,
        description="The user of an authenticated session, as the session carries them.",
        descriptions={
            "id": "The user's id.",
            "identifier": "The user's identifier (login name) in its normal form: NFKC, case-folded, trimmed.",
            "verified": "Whether the user is verified.",
            "channel_permissions": (
                "The user's permissions, one entry per channel where a role of theirs applies, by channel id."
            ),
        },
    )
    CachedSession = object_type(
        CachedSessionValue,
        exclude=frozenset({"cache_key", "activity_due"}),
        description=(
            "A session: a guest's (no user) or a logged-in user's. This is the form the session cache "
            "holds, so reading it is fast; changing a channel, a role or a user clears that cache, so the "
            "user and permissions it carries stay current."
        ),
        descriptions={
            "cache_expiry": (
                "Unix time in seconds until which a cached copy of this session may be used without reading "
                "the database."
            ),
            "id": "The session's id.",
            "token": (
                "The session token the request presented or, for a session just created, the new one. "
                "Present it on later requests (cookie or Authorization: Bearer, as the server is configured)."
            ),
            "expires": (
                "When the session ends unless used. Use slides it: once less than half of the session "
                "duration is left, a request pushes it a full duration ahead (up to the server's maximum "
                "lifetime, when one is set)."
            ),
            "active_order_id": "The id of the session's active order (its cart); null when it has none.",
            "authentication_strategy": (
                'How the user proved who they are: "native" for login with a password, or the name given to '
                "createNewAuthenticatedSession; null for a guest session."
            ),
            "user": "The logged-in user; null for a guest session.",
            "active_channel_id": (
                "The channel the session works in: that of the request that last used it (set by the channel "
                "token header, the default channel without one) or of setActiveChannel since."
            ),
            "authenticated_at": (
                "When the user last proved their password in this session (login, reauthenticate); null for a "
                "guest session and for one made by createNewAuthenticatedSession. A service can demand a recent "
                "proof from it alone."
            ),
            "impersonator_id": (
                "The administrator who made this session for its user with createNewAuthenticatedSession "
                "(impersonation); null otherwise. Such a session cannot reauthenticate."
            ),
        },
    )


def _optional_id(value: int | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.interface(description="A login that was refused, returned as data rather than as a GraphQL error.")
class ErrorResult:
    error_code: ErrorCode = strawberry.field(description="Why the login was refused.")
    message: str = strawberry.field(description="The reason in English, fit to show to the person logging in.")


@strawberry.type(
    description=(
        "The identifier and password do not match a user who can log in with a password. An unknown "
        "identifier and a wrong password are answered alike."
    )
)
class InvalidCredentialsError(ErrorResult):
    authentication_error: str = strawberry.field(
        description="Details from the authentication strategy; empty for the native password login."
    )


@strawberry.type(
    description="The password is right, but the user is not verified and the server requires verification."
)
class NotVerifiedError(ErrorResult):
    pass


LoginResult = Annotated[
    CachedSession | InvalidCredentialsError | NotVerifiedError,
    strawberry.union(
        "LoginResult", description="The new session when the login succeeded, otherwise why it was refused."
    ),
]


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


@strawberry.type(description="The outcome of an operation that returns no object.")
class Success:
    success: bool = strawberry.field(
        description="Whether the operation did its work; each operation says when it is false."
    )


@strawberry.type(
    description=(
        "A store front. A request works in the channel whose token it sends in the channel token header "
        "(channel-token unless the server's CHANNEL_TOKEN_HEADER names another); without one, the default channel."
    )
)
class Channel:
    id: strawberry.ID = strawberry.field(description="The channel's id.")
    code: str = strawberry.field(description="The channel's unique code.")
    token: str = strawberry.field(
        description="The channel's unique token: clients send it in the channel token header to work in this channel."
    )

    @classmethod
    def from_domain(cls, channel: ChannelModel) -> Channel:
        return cls(id=strawberry.ID(str(channel.id)), code=channel.code, token=channel.token)


@strawberry.type(description="A set of permissions granted on some channels to the users who have the role.")
class Role:
    id: strawberry.ID = strawberry.field(description="The role's id.")
    code: str = strawberry.field(description="The role's unique code.")
    description: str = strawberry.field(
        description="What the role is for, in the words of whoever made it; may be empty."
    )
    permissions: list[Permission] = strawberry.field(
        description="The permissions the role grants, without repeats, in the order of the Permission enum."
    )
    channels: list[Channel] = strawberry.field(description="The channels the permissions apply on, by id.")

    @classmethod
    def from_domain(cls, role: RoleModel) -> Role:
        return cls(
            id=strawberry.ID(str(role.id)),
            code=role.code,
            description=role.description,
            permissions=[PermissionValue(p) for p in role.permissions],
            channels=[Channel.from_domain(c) for c in sorted(role.channels, key=lambda c: c.id)],
        )


@strawberry.type(description="A customer or administrator who can have authenticated sessions.")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id.")
    identifier: str = strawberry.field(
        description="The login name, unique, in its normal form: NFKC, case-folded, trimmed."
    )
    verified: bool = strawberry.field(
        description=(
            "Whether the user is verified. When the server requires verification, only verified users can log in."
        )
    )
    last_login: datetime | None = strawberry.field(
        description="When the user's last session was created (login or createNewAuthenticatedSession); null if never."
    )
    roles: list[Role] = strawberry.field(description="The user's roles, by id.")

    @classmethod
    def from_domain(cls, user: UserModel) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            identifier=user.identifier,
            verified=user.verified,
            last_login=user.last_login,
            roles=[Role.from_domain(r) for r in sorted(user.roles, key=lambda r: r.id)],
        )


@strawberry.type(description="A quantity of one product variant in an order.")
class OrderLine:
    id: strawberry.ID = strawberry.field(description="The line's id.")
    product_variant_id: strawberry.ID = strawberry.field(
        description="The product variant, as the shop named it in addItemToOrder; one line per variant."
    )
    quantity: int = strawberry.field(description="How many, from 1 to 1,000,000.")


@strawberry.type(description="An order, just enough of one to be a session's cart: a guest's or a user's.")
class Order:
    id: strawberry.ID = strawberry.field(description="The order's id.")
    code: str = strawberry.field(description="A random 16-character code, for people to quote.")
    active: bool = strawberry.field(description="Whether the order is still a cart that sessions can hold.")
    user_id: strawberry.ID | None = strawberry.field(
        description="The id of the user who owns it; null for a guest order."
    )
    lines: list[OrderLine] = strawberry.field(description="The order's lines, oldest first.")

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
