from __future__ import annotations

from enum import Enum

import strawberry

from models.enums import Permission as PermissionValue

Permission = strawberry.enum(PermissionValue, name="Permission")


@strawberry.enum
class ErrorCode(Enum):
    INVALID_CREDENTIALS_ERROR = "INVALID_CREDENTIALS_ERROR"
    NOT_VERIFIED_ERROR = "NOT_VERIFIED_ERROR"
