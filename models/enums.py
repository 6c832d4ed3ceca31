"""Enumerations stored in the database."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """What a role may do; `Owner` and `Public` are pseudo-permissions checked per request."""

    Authenticated = "Authenticated"
    SuperAdmin = "SuperAdmin"
    Owner = "Owner"
    Public = "Public"
    ReadSession = "ReadSession"
    DeleteSession = "DeleteSession"
    ImpersonateUser = "ImpersonateUser"
    CreateUser = "CreateUser"
    ReadUser = "ReadUser"
    UpdateUser = "UpdateUser"
    DeleteUser = "DeleteUser"
    CreateChannel = "CreateChannel"
    ReadChannel = "ReadChannel"
    UpdateChannel = "UpdateChannel"
    DeleteChannel = "DeleteChannel"
    CreateRole = "CreateRole"
    ReadRole = "ReadRole"
    UpdateRole = "UpdateRole"
    DeleteRole = "DeleteRole"
    ReadOrder = "ReadOrder"
    UpdateOrder = "UpdateOrder"


PERMISSION_ORDER = {permission: index for index, permission in enumerate(Permission)}


class SessionType(StrEnum):
    ANONYMOUS = "anonymous"
    AUTHENTICATED = "authenticated"


class SessionEventType(StrEnum):
    """What happened to a session (the values are the GraphQL enum's names)."""

    LOGIN = "LOGIN"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGOUT = "LOGOUT"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    ORDER_MERGED = "ORDER_MERGED"
    IMPERSONATION_STARTED = "IMPERSONATION_STARTED"
    REAUTHENTICATED = "REAUTHENTICATED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
