from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TimestampedModel

if TYPE_CHECKING:
    from models.role import Role


class User(TimestampedModel):
    """Someone who can log in, its password is stored only as an Argon2 hash."""

    identifier = fields.CharField(max_length=255, unique=True)
    password_hash = fields.CharField(max_length=255, null=True)
    verified = fields.BooleanField(default=True)
    last_login = fields.DatetimeField(null=True)
    #: True on the superadmin the bootstrap keeps, NULL on every other user, unique so at most one holds it
    is_superadmin = fields.BooleanField(null=True, unique=True)
    roles: fields.ManyToManyRelation[Role] = fields.ManyToManyField(
        "models.Role", related_name="users", through="user_roles"
    )

    class Meta:
        table = "users"
