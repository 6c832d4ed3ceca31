from __future__ import annotations

from tortoise import fields, models

from models.enums import SessionEventType


class SessionEvent(models.Model):
    """What happened to a session, kept for SESSION_EVENT_RETENTION. Never a token or a password."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    type = fields.CharEnumField(SessionEventType, max_length=32)
    #: the session it happened to - not a foreign key, the event outlives the session
    session_id = fields.IntField(null=True)
    #: the user the session belongs (or was to belong) to - not a foreign key, the event outlives the user
    user_id = fields.IntField(null=True)
    #: the user who caused it when that is someone else (an administrator)
    actor_id = fields.IntField(null=True)
    #: the client address, as SESSION_CLIENT_ADDRESS keeps it
    ip_address = fields.CharField(max_length=45, null=True)
    #: a stable lower-case code saying why, such as revoked-by-admin or rate-limited
    reason = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "session_events"
        # (at): the newest-first list and the retention clean-up, (user_id, at) and (type, at): its filters.
        indexes = (("at",), ("user_id", "at"), ("type", "at"))
