"""Reading a session with its user's channel permissions in one database round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import LambdaType
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from models import Session
from models.enums import PERMISSION_ORDER, Permission, SessionType
from server.cached_session import CachedSessionUser, UserChannelPermissions
from server.database import database_connection

_FIELDS = (
    "id",
    "type",
    "created_at",
    "expires",
    "last_active_at",
    "invalidated",
    "remember_me",
    "authentication_strategy",
    "active_order_id",
    "active_channel_id",
    "user_id",
    "seen_at",
    "authenticated_at",
)
_RELATED = {
    "user_identifier": "user__identifier",
    "user_verified": "user__verified",
    "role_permissions": "user__roles__permissions",
    "channel_id": "user__roles__channels__id",
    "channel_token": "user__roles__channels__token",
    "channel_code": "user__roles__channels__code",
}
#: Each column of a row, by its alias, as `values(*_FIELDS, **_RELATED)` selects it.
_SELECTED = {name: name for name in _FIELDS} | _RELATED


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session row as the database holds it, with the user's permissions already folded per channel."""

    id: int
    token_hash: str
    type: SessionType
    expires: datetime
    last_active_at: datetime
    invalidated: bool
    authentication_strategy: str | None
    active_order_id: int | None
    active_channel_id: int | None
    user: CachedSessionUser | None
    #: when the session was created; SESSION_MAX_LIFETIME counts from here
    created_at: datetime | None = None
    #: false for a login without rememberMe: its cookie is never given a lifetime
    remember_me: bool = True
    #: when a request presenting the token as its own credential was last served (lastActiveAt)
    seen_at: datetime | None = None
    #: when the user last proved a credential in this session; None for guests and API-made sessions
    authenticated_at: datetime | None = None

    @classmethod
    def new_guest(
        cls, id: int, token_hash: str, created_at: datetime, expires: datetime, active_channel_id: int | None
    ) -> StoredSession:
        """A guest session just inserted: everything about it is known without reading it back."""
        return cls(
            id=id,
            token_hash=token_hash,
            type=SessionType.ANONYMOUS,
            expires=expires,
            last_active_at=created_at,
            invalidated=False,
            authentication_strategy=None,
            active_order_id=None,
            active_channel_id=active_channel_id,
            user=None,
            created_at=created_at,
            seen_at=created_at,
        )


class _PreparedLookup:
    """The lookup's SQL, built once per SQL dialect: building it per call costs more than running it."""

    def __init__(self, db: BaseDBAsyncClient) -> None:
        query = Session.filter(token_hash="").using_db(db).values(*_FIELDS, **_RELATED)
        query.sql()  # builds `query.query`, the statement in the connection's dialect
        self.sql, params = query.query.get_parameterized_sql()
        assert params == [""], "the lookup must take the token digest as its only parameter"
        self.converters: list[tuple[str, Callable[[Any], Any]]] = [
            (alias, converter)
            for alias, field in _SELECTED.items()
            if not isinstance(converter := query.resolve_to_python_value(Session, field), LambdaType)
        ]

    async def rows(self, db: BaseDBAsyncClient, token_hash: str) -> list[dict[str, Any]]:
        rows = await db.execute_query_dict(self.sql, [token_hash])
        for row in rows:
            for alias, converter in self.converters:
                row[alias] = converter(row[alias])
        return rows


_prepared: dict[str, _PreparedLookup] = {}


async def load_stored_session(token_hash: str, using: BaseDBAsyncClient | None = None) -> StoredSession | None:
    db = using or database_connection()
    dialect = db.capabilities.dialect
    lookup = _prepared.get(dialect)
    if lookup is None:
        lookup = _prepared[dialect] = _PreparedLookup(db)
    rows = await lookup.rows(db, token_hash)
    if not rows:
        return None
    first = rows[0]
    return StoredSession(
        id=first["id"],
        token_hash=token_hash,
        type=SessionType(first["type"]),
        expires=first["expires"],
        last_active_at=first["last_active_at"],
        invalidated=bool(first["invalidated"]),
        authentication_strategy=first["authentication_strategy"],
        active_order_id=first["active_order_id"],
        active_channel_id=first["active_channel_id"],
        user=_fold_user(rows),
        created_at=first["created_at"],
        remember_me=bool(first["remember_me"]),
        seen_at=first["seen_at"],
        authenticated_at=first["authenticated_at"],
    )


def _fold_user(rows: list[dict[str, Any]]) -> CachedSessionUser | None:
    first = rows[0]
    if first["user_id"] is None:
        return None
    channels: dict[int, tuple[str, str, set[Permission]]] = {}
    for row in rows:
        if row["channel_id"] is None:
            continue
        entry = channels.setdefault(row["channel_id"], (row["channel_token"], row["channel_code"], set()))
        entry[2].update(_permissions(row["role_permissions"]))
    return CachedSessionUser(
        id=first["user_id"],
        identifier=first["user_identifier"],
        verified=bool(first["user_verified"]),
        channel_permissions=tuple(
            UserChannelPermissions(
                id=channel_id,
                token=token,
                code=code,
                permissions=tuple(sorted(permissions, key=PERMISSION_ORDER.__getitem__)),
            )
            for channel_id, (token, code, permissions) in sorted(channels.items())
        ),
    )


def _permissions(raw: object) -> list[Permission]:
    if isinstance(raw, str):  # some backends hand JSON columns back undecoded through values()
        raw = json.loads(raw)
    if not isinstance(raw, list):
        return []
    return [Permission(value) for value in raw if value in Permission.__members__]
