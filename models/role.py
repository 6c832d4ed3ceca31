from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TimestampedModel

if TYPE_CHECKING:
    from models.channel import Channel


class Role(TimestampedModel):
    """A set of permissions granted on some channels, whose permissions hold Permission values."""

    code = fields.CharField(max_length=64, unique=True)
    description = fields.CharField(max_length=255, default="")
    permissions: list[str] = fields.JSONField(default=list)
    channels: fields.ManyToManyRelation[Channel] = fields.ManyToManyField(
        "models.Channel", related_name="roles", through="role_channels"
    )

    class Meta:
        table = "roles"
