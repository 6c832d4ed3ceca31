"""Instance B's own network namespace, joined to the host by two veth links.

The database link carries B's PostgreSQL connections and the harness's HTTP requests to B; the
cache link carries only B's Redis connections, so taking it down cuts B off from Redis alone.
A link is cut by setting its host end down: B's end loses its carrier, its route stays, and
packets are dropped silently, as in a partition (connects and replies time out, nothing is refused).
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from types import TracebackType

COMMAND_TIMEOUT = 10.0
#: /30 links are carved from this range, one /24 per namespace.
ADDRESS_RANGE = ipaddress.IPv4Network("10.213.0.0/16")


class NamespaceUnavailable(Exception):
    """Network namespaces or veth links cannot be made here; the message says why."""


@dataclass(frozen=True)
class Link:
    """A veth pair: one end in the host's namespace, the other in B's, each with an address."""

    host_device: str
    inner_device: str
    host_address: str
    inner_address: str


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)


def _must(*args: str) -> None:
    done = _ip(*args)
    if done.returncode != 0:
        raise NamespaceUnavailable(f"`ip {' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of ADDRESS_RANGE that no interface of the host uses yet."""
    used = _ip("-o", "-4", "addr", "show").stdout
    subnets = list(ADDRESS_RANGE.subnets(new_prefix=24))
    for _ in range(64):
        subnet = subnets[secrets.randbelow(len(subnets))]
        if f" {str(subnet.network_address).rsplit('.', 1)[0]}." not in used:
            return subnet
    raise NamespaceUnavailable(f"no free /24 left in {ADDRESS_RANGE}")


class Namespace:
    """A network namespace with a database link and a cache link to the host; removed by `close()`."""

    def __init__(self) -> None:
        if shutil.which("ip") is None:
            raise NamespaceUnavailable("the `ip` command (iproute2) is not installed")
        tag = secrets.token_hex(3)
        self.name = f"soak-{tag}"
        hosts = list(_free_subnet().hosts())
        self.database = Link(f"sk{tag}d0", f"sk{tag}d1", str(hosts[0]), str(hosts[1]))
        self.cache = Link(f"sk{tag}c0", f"sk{tag}c1", str(hosts[4]), str(hosts[5]))
        self._created = False
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    @property
    def exec_prefix(self) -> list[str]:
        """Prefix of a command line that runs the command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def _create(self) -> None:
        _must("netns", "add", self.name)
        self._created = True
        _must("-n", self.name, "link", "set", "lo", "up")
        for link in (self.database, self.cache):
            _must(
                "link", "add", link.host_device, "type", "veth", "peer", "name", link.inner_device, "netns", self.name
            )
            _must("addr", "add", f"{link.host_address}/30", "dev", link.host_device)
            _must("link", "set", link.host_device, "up")
            _must("-n", self.name, "addr", "add", f"{link.inner_address}/30", "dev", link.inner_device)
            _must("-n", self.name, "link", "set", link.inner_device, "up")
        # `ip netns exec` also needs a private mount namespace (for /sys): check it works here.
        entered = subprocess.run([*self.exec_prefix, "true"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if entered.returncode != 0:
            raise NamespaceUnavailable(f"`ip netns exec` failed: {entered.stderr.strip()}")

    def cut(self, link: Link) -> None:
        """Drop every packet on `link` from now on, without telling either end."""
        _must("link", "set", link.host_device, "down")

    def restore(self, link: Link) -> None:
        _must("link", "set", link.host_device, "up")

    def close(self) -> None:
        for link in (self.database, self.cache):
            _ip("link", "del", link.host_device)  # takes the peer with it
        if self._created:
            _ip("netns", "del", self.name)
            self._created = False

    def __enter__(self) -> Namespace:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
