from __future__ import annotations

from tortoise import fields

from models.base import TimestampedModel
from models.user import User


class Order(TimestampedModel):
    """Just enough of an order to be a cart. A guest order has no user."""

    code = fields.CharField(max_length=32, unique=True)
    active = fields.BooleanField(default=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="orders", null=True, on_delete=fields.CASCADE
    )
    #: the session that created a guest order (not a foreign key, sessions come and go)
    created_by_session_id = fields.IntField(null=True)
    lines: fields.ReverseRelation[OrderLine]

    class Meta:
        table = "orders"
        indexes = (("user_id", "active"),)


class OrderLine(TimestampedModel):
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="lines", on_delete=fields.CASCADE
    )
    product_variant_id = fields.CharField(max_length=64)
    quantity = fields.IntField()

    class Meta:
        table = "order_lines"
        unique_together = (("order_id", "product_variant_id"),)
