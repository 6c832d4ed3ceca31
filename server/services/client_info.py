"""Where a session is used from: the client's address and user agent, as the settings let us keep them,
and a readable device label derived from the user agent (ua-parser's maintained rules).

The address is the one the request came from, `request.client.host`: uvicorn sets it from
X-Forwarded-For only for the peers FORWARDED_ALLOW_IPS names (as for the login limiter), so a client
cannot choose what is recorded. SESSION_CLIENT_ADDRESS keeps it `full`, `truncated` (the /24 network
of an IPv4 address, the /48 of an IPv6 one, written as its first address) or `off` (not at all).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from ua_parser import parse

from server.settings import Settings

#: The prefix lengths kept of an address with SESSION_CLIENT_ADDRESS=truncated.
TRUNCATED_PREFIX = {4: 24, 6: 48}
_UNKNOWN = "Other"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The client of a request presenting a session token as its own credential, as the request gave it."""

    address: str | None = None
    user_agent: str | None = None

    def kept(self, settings: Settings) -> tuple[str | None, str | None]:
        """(address, user agent) as the settings let them be stored: the Session columns `client_address`
        and `user_agent`."""
        return (
            kept_address(self.address, settings.session_client_address),
            kept_user_agent(self.user_agent, settings.session_user_agent_max),
        )


@functools.lru_cache(maxsize=4096)  # a shop's clients come back: parsing an address costs more than the rest
def kept_address(address: str | None, mode: str) -> str | None:
    """`address` as SESSION_CLIENT_ADDRESS `mode` keeps it; None for `off` or for what is not an IP address."""
    if address is None or mode == "off":
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client on a dual-stack socket is kept as IPv4
    if mode == "full":
        return str(ip)
    network = ipaddress.ip_network(f"{ip}/{TRUNCATED_PREFIX[ip.version]}", strict=False)
    return str(network.network_address)


def kept_user_agent(user_agent: str | None, limit: int) -> str | None:
    """The user agent cut to `limit` characters, without what no database stores (NUL, lone surrogates)."""
    if not user_agent:
        return None
    text = user_agent.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
    return text[:limit] or None


@functools.lru_cache(maxsize=1024)
def device_label(user_agent: str | None) -> str | None:
    """A readable label such as "Firefox 133 on Linux"; None when the parser recognises nothing."""
    if not user_agent:
        return None
    parsed = parse(user_agent)
    browser = _named(parsed.user_agent.family, parsed.user_agent.major) if parsed.user_agent else None
    system = _named(parsed.os.family, parsed.os.major) if parsed.os else None
    if browser and system:
        return f"{browser} on {system}"
    return browser or system


def _named(family: str, major: str | None) -> str | None:
    if not family or family == _UNKNOWN:
        return None
    return f"{family} {major}" if major else family
