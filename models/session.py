from __future__ import annotations

from tortoise import fields

from models.base import TimestampedModel
from models.channel import Channel
from models.enums import SessionType
from models.order import Order
from models.user import User


class Session(TimestampedModel):
    """Anonymous or authenticated session. Only the SHA-256 digest of its token is stored."""

    token_hash = fields.CharField(max_length=64, unique=True)
    type = fields.CharEnumField(SessionType, max_length=16)
    expires = fields.DatetimeField()
    #: refreshed at most about once a day, so idle anonymous sessions can be found
    last_active_at = fields.DatetimeField()
    invalidated = fields.BooleanField(default=False)
    #: false for a login without rememberMe, whose cookie ends with the browser session
    remember_me = fields.BooleanField(default=True, db_default=True)
    authentication_strategy = fields.CharField(max_length=64, null=True)
    #: when a request presenting the token as its own credential was last served, to SESSION_ACTIVITY_RESOLUTION
    seen_at = fields.DatetimeField(null=True)
    #: the client address of the creating or last refreshing request, as SESSION_CLIENT_ADDRESS keeps it
    client_address = fields.CharField(max_length=45, null=True)
    #: the user agent of that request, cut to SESSION_USER_AGENT_MAX characters
    user_agent = fields.TextField(null=True)
    #: when the user last proved a credential in this session (login) - null for guests and API-made sessions
    authenticated_at = fields.DatetimeField(null=True)
    #: the administrator who created this session for its user (impersonation) - null otherwise
    impersonator: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="impersonated_sessions", null=True, on_delete=fields.SET_NULL
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", null=True, on_delete=fields.CASCADE
    )
    active_order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="sessions", null=True, on_delete=fields.SET_NULL
    )
    active_channel: fields.ForeignKeyNullableRelation[Channel] = fields.ForeignKeyField(
        "models.Channel", related_name="sessions", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "sessions"
        # (type, last_active_at, active_order_id): the clean job's idle batch walks it in last_active_at
        # order and skips sessions holding an order (abandoned carts) inside the index (bench/EXPLAIN.md).
        indexes = (("expires",), ("type", "last_active_at", "active_order_id"), ("user_id",), ("active_order_id",))
