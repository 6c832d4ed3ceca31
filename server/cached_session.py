"""The small, serializable form of a session that is cached and returned by the API."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from types import UnionType
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

from models.enums import Permission


@dataclass(frozen=True, slots=True)
class UserChannelPermissions:
    """The union of a user's role permissions on one channel."""

    id: int
    token: str
    code: str
    permissions: tuple[Permission, ...]


@dataclass(frozen=True, slots=True)
class CachedSessionUser:
    id: int
    identifier: str
    verified: bool
    channel_permissions: tuple[UserChannelPermissions, ...]

    def permissions_on(self, channel_id: int) -> frozenset[Permission]:
        for entry in self.channel_permissions:
            if entry.id == channel_id:
                return frozenset(entry.permissions)
        return frozenset()


@dataclass(frozen=True, slots=True)
class CachedSession:
    """A session as the cache holds it. `token` is the raw token of the caller and `cache_key` its
    SHA-256 digest (the key of the cached copy and of the session's row); neither is cached.
    `activity_due` (Unix seconds) is when a request presenting the token as its own credential next
    refreshes the session's lastActiveAt, address and user agent; it is cached but not part of the API."""

    cache_expiry: float
    id: int
    token: str
    expires: datetime
    active_order_id: int | None = None
    authentication_strategy: str | None = None
    user: CachedSessionUser | None = None
    active_channel_id: int | None = None
    authenticated_at: datetime | None = None
    impersonator_id: int | None = None
    activity_due: float = 0.0
    cache_key: str = ""

    def without_token(self) -> CachedSession:
        """The copy that is cached: no token, no key."""
        return self.with_token("", "")

    def with_token(self, token: str, cache_key: str) -> CachedSession:
        # Spelled out rather than dataclasses.replace(): this runs on every cache hit.
        return CachedSession(
            self.cache_expiry,
            self.id,
            token,
            self.expires,
            self.active_order_id,
            self.authentication_strategy,
            self.user,
            self.active_channel_id,
            self.authenticated_at,
            self.impersonator_id,
            self.activity_due,
            cache_key,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (camelCase keys, dates as ISO strings); the token and its key are left out."""
        return _CACHED_SESSION_CODEC.encode(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], token: str = "", cache_key: str = "") -> CachedSession:
        return cast(CachedSession, _CACHED_SESSION_CODEC.decode(data, token=token, cache_key=cache_key))


Convert = Callable[[Any], Any]


class _Codec:
    """The JSON form of a dataclass, derived from its fields once: camelCase keys; dates as ISO strings,
    enums as values, tuples as lists, nested dataclasses alike; fields in `excluded` are left out and
    given back by the caller on decoding."""

    def __init__(self, cls: type, excluded: frozenset[str] = frozenset()) -> None:
        hints = get_type_hints(cls)
        self._cls = cls
        self._fields = [
            (field.name, _camel(field.name), *_converters(hints[field.name]))
            for field in fields(cls)
            if field.name not in excluded
        ]
        # A copy cached before a field with a default was added lacks its key: it takes the default.
        self._optional = frozenset(
            _camel(field.name) for field in fields(cls) if field.default is not MISSING and field.name not in excluded
        )

    def encode(self, value: Any) -> dict[str, Any]:
        return {key: encode(getattr(value, name)) for name, key, encode, _ in self._fields}

    def decode(self, data: dict[str, Any], **given: Any) -> Any:
        return self._cls(
            **{
                name: decode(data[key])
                for name, key, _, decode in self._fields
                if key in data or key not in self._optional
            },
            **given,
        )


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _identity(value: Any) -> Any:
    return value


def _converters(hint: Any) -> tuple[Convert, Convert]:
    """(encode, decode) for one field's type."""
    if hint in (int, float, str, bool):
        return _identity, _identity
    if hint is datetime:
        return datetime.isoformat, datetime.fromisoformat
    if isinstance(hint, type) and issubclass(hint, Enum):
        return operator.attrgetter("value"), hint
    if is_dataclass(hint) and isinstance(hint, type):
        codec = _Codec(hint)
        return codec.encode, codec.decode
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        encode_item, decode_item = _converters(args[0])
        return (lambda items: [encode_item(item) for item in items]), (
            lambda items: tuple(decode_item(item) for item in items)
        )
    if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        encode, decode = _converters(inner)
        return (lambda value: None if value is None else encode(value)), (
            lambda value: None if value is None else decode(value)
        )
    raise TypeError(f"no JSON form for {hint!r}")


_CACHED_SESSION_CODEC = _Codec(CachedSession, excluded=frozenset({"token", "cache_key"}))
