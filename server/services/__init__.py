"""The services: all business logic, free of GraphQL and HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from server.cache import GuardedSessionCache
from server.services.auth import AuthService
from server.services.channel import ChannelService
from server.services.login_limiter import LoginLimiter
from server.services.order import OrderService
from server.services.role import RoleService
from server.services.session import SessionService
from server.services.session_management import SessionManagement
from server.services.user import UserService
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    sessions: SessionService
    orders: OrderService
    channels: ChannelService
    roles: RoleService
    users: UserService
    auth: AuthService
    #: listing and ending sessions (mySessions, sessionsOfUser, revokeSession, logoutOtherSessions)
    session_management: SessionManagement

    @classmethod
    def build(cls, cache: GuardedSessionCache, settings: Settings, limiter: LoginLimiter | None = None) -> Services:
        """`limiter` counts login attempts (None: no limit); see server/cache's factories for both."""
        sessions = SessionService(cache, settings)
        return cls(
            sessions=sessions,
            orders=OrderService(sessions),
            channels=ChannelService(sessions),
            roles=RoleService(sessions),
            users=UserService(sessions, limiter),
            auth=AuthService(sessions, settings.require_verification, limiter),
            session_management=SessionManagement(sessions, settings),
        )


__all__ = [
    "AuthService",
    "ChannelService",
    "OrderService",
    "RoleService",
    "Services",
    "SessionManagement",
    "SessionService",
    "UserService",
]
