"""Persistence: the Tortoise models of the session service."""

from __future__ import annotations

from models.cache_outage import CacheOutage
from models.channel import Channel
from models.enums import Permission, SessionEventType, SessionType
from models.order import Order, OrderLine
from models.role import Role
from models.session import Session
from models.session_event import SessionEvent
from models.user import User

__models__ = [Channel, Role, User, Order, OrderLine, Session, CacheOutage, SessionEvent]
__all__ = [
    "CacheOutage",
    "Channel",
    "Order",
    "OrderLine",
    "Permission",
    "Role",
    "Session",
    "SessionEvent",
    "SessionEventType",
    "SessionType",
    "User",
]
