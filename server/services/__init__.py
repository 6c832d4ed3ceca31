"""The services: all business logic, free of GraphQL and HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from server.cache import GuardedSessionCache
from server.services.auth import AuthService
from server.services.channel import ChannelService
from server.services.fresh_proof import FreshProof
from server.services.impersonation import Impersonation
from server.services.login_failures import LoginFailures
from server.services.login_limiter import LoginLimiter
from server.services.order import OrderService
from server.services.reauthentication import Reauthentication
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
    #: whether the caller's password proof is recent enough for a sensitive operation (SESSION_FRESH_AGE)
    fresh_proof: FreshProof
    #: reauthenticate: a new proof, and a new token for the session
    reauthentication: Reauthentication
    #: createNewAuthenticatedSession, for oneself or (an impersonation) for another user
    impersonation: Impersonation

    @classmethod
    def build(cls, cache: GuardedSessionCache, settings: Settings, limiter: LoginLimiter | None = None) -> Services:
        """`limiter` counts login attempts (None: no limit); see server/cache's factories for both."""
        sessions = SessionService(cache, settings)
        users = UserService(sessions, limiter)
        return cls(
            sessions=sessions,
            orders=OrderService(sessions),
            channels=ChannelService(sessions),
            roles=RoleService(sessions),
            users=users,
            auth=AuthService(sessions, settings.require_verification, limiter, LoginFailures(settings)),
            session_management=SessionManagement(sessions, settings),
            fresh_proof=FreshProof(settings, sessions.now),
            reauthentication=Reauthentication(sessions, settings, limiter, LoginFailures(settings)),
            impersonation=Impersonation(sessions, users),
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
