"""The GraphQL enums, each value described. The domain's Permission stays free of Strawberry: its
descriptions are attached here, when it is registered."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

import strawberry

from models.enums import Permission

PERMISSION_DESCRIPTIONS: Mapping[Permission, str] = {
    Permission.Authenticated: "Held by every logged-in user: operations on the caller's own account.",
    Permission.SuperAdmin: (
        "Counts as every permission on the channels where it is held. It belongs to the superadmin's "
        "role alone and cannot be granted to another role."
    ),
    Permission.Owner: (
        "Anyone may call: without a session token, the call first creates a guest session and sends "
        "its token in the response."
    ),
    Permission.Public: "Anyone may call, with or without a session.",
    Permission.ReadSession: "Read any user's sessions, such as by token with serializeSession.",
    Permission.DeleteSession: "End any user's sessions, and remove expired ones (cleanExpiredSessions).",
    Permission.ImpersonateUser: "Create a session for another user (createNewAuthenticatedSession).",
    Permission.CreateUser: "Create users (createUser).",
    Permission.ReadUser: "Read users. No operation of this API needs it yet.",
    Permission.UpdateUser: "Change users' identifiers, passwords, verification and roles (updateUser).",
    Permission.DeleteUser: "Delete users with their sessions and orders (deleteUser).",
    Permission.CreateChannel: "Create channels (createChannel).",
    Permission.ReadChannel: "Read channels. No operation of this API needs it yet.",
    Permission.UpdateChannel: "Change channels. No operation of this API needs it yet.",
    Permission.DeleteChannel: "Delete channels. No operation of this API needs it yet.",
    Permission.CreateRole: "Create roles (createRole), granting only what the caller holds.",
    Permission.ReadRole: "Read roles. No operation of this API needs it yet.",
    Permission.UpdateRole: "Change roles (updateRole), granting only what the caller holds.",
    Permission.DeleteRole: "Delete roles. No operation of this API needs it yet.",
    Permission.ReadOrder: "Read any order. No operation of this API needs it yet.",
    Permission.UpdateOrder: "Change any order. No operation of this API needs it yet.",
}


E = TypeVar("E", bound=Enum)


def describe_enum(enum: type[E], description: str, values: Mapping[E, str]) -> None:
    """Register `enum` with Strawberry under its own name, with a description for the enum and for
    each of its values; a value without one is an error, so a new member cannot go undocumented."""
    missing = [member.name for member in enum if member not in values]
    if missing:
        raise ValueError(f"{enum.__name__} values without a description: {', '.join(missing)}")
    strawberry.enum(enum, description=description)
    definition = enum.__strawberry_definition__  # type: ignore[attr-defined]
    definition.values = [
        dataclasses.replace(value, description=values[enum(value.value)]) for value in definition.values
    ]


# The domain enum itself becomes the GraphQL enum: values travel through unchanged.
describe_enum(
    Permission,
    "What a role allows on its channels; also the rules that open an operation to every caller "
    "(Public, Owner, Authenticated). Permissions are checked on the channel of the request.",
    PERMISSION_DESCRIPTIONS,
)


@strawberry.enum(description="Why a login was refused; the errorCode of an ErrorResult.")
class ErrorCode(Enum):
    INVALID_CREDENTIALS_ERROR = strawberry.enum_value(
        "INVALID_CREDENTIALS_ERROR",
        description="The identifier and password do not match a user who can log in with a password.",
    )
    NOT_VERIFIED_ERROR = strawberry.enum_value(
        "NOT_VERIFIED_ERROR",
        description="The password is right, but the user is not verified and the server requires verification.",
    )


__all__ = ["PERMISSION_DESCRIPTIONS", "ErrorCode", "Permission", "describe_enum"]
