from __future__ import annotations

from tortoise import fields

from models.base import TimestampedModel


class Channel(TimestampedModel):
    """A store front, named by code and addressed by clients through its token."""

    code = fields.CharField(max_length=64, unique=True)
    token = fields.CharField(max_length=128, unique=True)
    is_default = fields.BooleanField(default=False)

    class Meta:
        table = "channels"
