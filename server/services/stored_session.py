"""A session row as the hot paths read and write it: one statement each, straight from the driver.

The lookup reads the session with its user's channel permissions in one SELECT by the unique
`token_hash` index; a new guest session is one INSERT. Both are plain parameterised SQL, written
once here for SQLite and PostgreSQL alike (only the placeholders differ: `?` and `$1`), and their
rows are read by position from the driver's own row objects: no ORM query is built and no model
instance made on the way, which cost more than running the statements themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

from tortoise.backends.base.client import BaseDBAsyncClient

from models.enums import PERMISSION_ORDER, Permission, SessionType
from server.cached_session import CachedSessionUser, UserChannelPermissions
from server.database import database_connection, parameters
from server.sqlite_reads import loop_thread_reader

_LOOKUP = """SELECT s.id, s.type, s.created_at, s.expires, s.last_active_at, s.invalidated, s.remember_me,
 s.authentication_strategy, s.active_order_id, s.active_channel_id, s.user_id, s.seen_at, s.authenticated_at,
 s.impersonator_id, u.identifier, u.verified, r.permissions, c.id, c.token, c.code
FROM sessions s
LEFT JOIN users u ON u.id = s.user_id
LEFT JOIN user_roles ur ON ur.users_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
LEFT JOIN role_channels rc ON rc.roles_id = r.id
LEFT JOIN channels c ON c.id = rc.channel_id
WHERE s.token_hash = {0}"""
# Positions in a row of _LOOKUP: the session's columns come first (0 to 13), then one role's channel
# per row (a session of a user with several roles and channels has a row for each pair).
_USER_ID = 10
_IDENTIFIER, _VERIFIED, _PERMISSIONS, _CHANNEL_ID, _CHANNEL_TOKEN, _CHANNEL_CODE = range(14, 20)

#: The columns a new guest session is inserted with, in the order of `insert_guest_session`'s values.
_GUEST_COLUMNS = (
    "token_hash",
    "type",
    "invalidated",
    "remember_me",
    "active_channel_id",
    "created_at",
    "updated_at",
    "expires",
    "last_active_at",
    "seen_at",
    "client_address",
    "user_agent",
)


def _insert(dialect: str, columns: tuple[str, ...]) -> str:
    """The INSERT of a session row with `columns`, returning its id on PostgreSQL (SQLite's driver gives
    the new row's id as lastrowid)."""
    values = ", ".join(parameters(dialect, len(columns)))
    returning = " RETURNING id" if dialect == "postgres" else ""
    return f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({values}){returning}"


def _statements(dialect: str) -> tuple[str, str]:
    """(lookup, guest insert) with the dialect's placeholders; the insert returns the new id on PostgreSQL
    (on SQLite the driver's lastrowid is that id)."""
    return _LOOKUP.format(parameters(dialect, 1)[0]), _insert(dialect, _GUEST_COLUMNS)


_STATEMENTS = {dialect: _statements(dialect) for dialect in ("sqlite", "postgres")}

#: The columns of a session a login (or createNewAuthenticatedSession) makes, beyond a guest's.
_LOGIN_COLUMNS = _GUEST_COLUMNS + (
    "user_id",
    "authentication_strategy",
    "authenticated_at",
    "impersonator_id",
    "active_order_id",
)


_LOGIN_INSERTS = {dialect: _insert(dialect, _LOGIN_COLUMNS) for dialect in ("sqlite", "postgres")}


def lookup_statement(dialect: str) -> str:
    """The lookup's SQL in `dialect` ("sqlite" or "postgres"), taking the token digest as its one parameter."""
    return _STATEMENTS[dialect][0]


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
    #: the administrator who made this session for its user (impersonation): IMPERSONATION_MAX_LIFETIME caps it
    impersonator_id: int | None = None

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


async def load_stored_session(token_hash: str, using: BaseDBAsyncClient | None = None) -> StoredSession | None:
    """The session whose token digest is `token_hash`, in one SELECT; None when there is no such row."""
    db = using or database_connection()
    statement = _STATEMENTS[db.capabilities.dialect][0]
    reader = loop_thread_reader(db)  # None inside a transaction: only its connection sees its writes
    rows: Sequence[Any] | None = None
    if reader is not None:
        rows = reader.rows(statement, [token_hash])
    if rows is None:
        fetched: Sequence[Any] = (await db.execute_query(statement, [token_hash]))[1]
        rows = fetched
    if not rows:
        return None
    first = rows[0]
    return StoredSession(
        id=first[0],
        token_hash=token_hash,
        type=SessionType(first[1]),
        created_at=_aware(first[2]),
        expires=_aware(first[3]),
        last_active_at=_aware(first[4]),
        invalidated=bool(first[5]),
        remember_me=bool(first[6]),
        authentication_strategy=first[7],
        active_order_id=first[8],
        active_channel_id=first[9],
        user=None if first[_USER_ID] is None else _fold_user(rows),
        seen_at=_aware(first[11]),
        authenticated_at=_aware(first[12]),
        impersonator_id=first[13],
    )


async def insert_guest_session(
    token_hash: str, active_channel_id: int | None, columns: dict[str, Any], using: BaseDBAsyncClient | None = None
) -> StoredSession:
    """Store a new guest session in one INSERT, nothing read back; `columns` are its lifetime and origin
    columns (SessionActivity.first_columns: created_at, expires, last_active_at, seen_at, client_address,
    user_agent)."""
    db = using or database_connection()
    values = _new_session_values(token_hash, SessionType.ANONYMOUS, True, active_channel_id, columns)
    session_id = await _insert_row(db, _STATEMENTS[db.capabilities.dialect][1], values)
    return StoredSession.new_guest(session_id, token_hash, columns["created_at"], columns["expires"], active_channel_id)


async def insert_authenticated_session(
    connection: BaseDBAsyncClient,
    token_hash: str,
    user_id: int,
    columns: dict[str, Any],
    *,
    authentication_strategy: str,
    remember_me: bool,
    authenticated_at: datetime | None,
    impersonator_id: int | None,
    active_order_id: int | None,
    active_channel_id: int | None,
) -> int:
    """Store a new session of `user_id` in one INSERT on `connection` (the login's transaction); its id.
    `columns` are its lifetime and origin columns, as for `insert_guest_session`."""
    values = _new_session_values(token_hash, SessionType.AUTHENTICATED, remember_me, active_channel_id, columns)
    values += [user_id, authentication_strategy, authenticated_at, impersonator_id, active_order_id]
    return await _insert_row(connection, _LOGIN_INSERTS[connection.capabilities.dialect], values)


def _new_session_values(
    token_hash: str,
    session_type: SessionType,
    remember_me: bool,
    active_channel_id: int | None,
    columns: dict[str, Any],
) -> list[Any]:
    """The values of `_GUEST_COLUMNS` for a new session, in their order."""
    created_at = columns["created_at"]
    values = [token_hash, session_type.value, False, remember_me, active_channel_id, created_at, created_at]
    values += [columns[name] for name in _GUEST_COLUMNS[len(values) :]]
    return values


async def _insert_row(connection: BaseDBAsyncClient, statement: str, values: list[Any]) -> int:
    """Run a session INSERT; the new row's id (SQLite's lastrowid, or the row PostgreSQL's RETURNING gives)."""
    inserted = await connection.execute_insert(statement, values)
    return inserted if isinstance(inserted, int) else int(inserted[0])


@overload
def _aware(value: datetime | str) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: datetime | str | None) -> datetime | None:
    """A timestamp column as an aware UTC datetime: SQLite hands back the ISO text it was stored as."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is UTC:  # as both drivers hand it back for what we store
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fold_user(rows: Sequence[Sequence[Any]]) -> CachedSessionUser:
    first = rows[0]
    channels: dict[int, tuple[str, str, set[Permission]]] = {}
    for row in rows:
        if row[_CHANNEL_ID] is None:
            continue
        entry = channels.setdefault(row[_CHANNEL_ID], (row[_CHANNEL_TOKEN], row[_CHANNEL_CODE], set()))
        entry[2].update(_permissions(row[_PERMISSIONS]))
    return CachedSessionUser(
        id=first[_USER_ID],
        identifier=first[_IDENTIFIER],
        verified=bool(first[_VERIFIED]),
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
    if isinstance(raw, str):  # the drivers hand JSON columns back as text
        raw = json.loads(raw)
    if not isinstance(raw, list):
        return []
    return [Permission(value) for value in raw if value in Permission.__members__]
