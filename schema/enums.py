from __future__ import annotations

from enum import Enum

import strawberry

from models.enums import Permission

# The domain enum itself becomes the GraphQL enum: values travel through unchanged.
strawberry.enum(Permission, name="Permission")


@strawberry.enum
class ErrorCode(Enum):
    INVALID_CREDENTIALS_ERROR = "INVALID_CREDENTIALS_ERROR"
    NOT_VERIFIED_ERROR = "NOT_VERIFIED_ERROR"


__all__ = ["ErrorCode", "Permission"]
