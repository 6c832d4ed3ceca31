"""Settings read once from the environment into an immutable object.

Every variable of RUNNING.md is parsed here. Every bad value is reported at once: SettingsError
names one variable and what it accepts, and `errors` holds each bad variable's (the CLI prints one
line each before exiting with code 2).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

TOKEN_METHODS = ("cookie", "bearer")
#: SESSION_CLIENT_ADDRESS: what a session keeps of its client's address (truncated: the /24 or /48 network)
CLIENT_ADDRESS_MODES = ("full", "truncated", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdwy]?)$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_IDENTIFIER = re.compile(r"^.{1,255}$")  # users.identifier is a CharField(max_length=255)
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: Schemes of SESSION_CACHE that name a Redis server; `rediss` is Redis over TLS.
REDIS_SCHEMES = ("redis", "rediss")
#: What a rediss:// URL's query may set: the CA bundle to trust, and whether the certificate is verified.
_TLS_OPTIONS = {"ssl_ca_certs": None, "ssl_cert_reqs": ("required", "none")}
#: WEB_CONCURRENCY's ceiling: far more processes than cores only adds memory and connections
MAX_WORKERS = 64
#: SESSION_USER_AGENT_MAX's ceiling (characters): the header itself is bounded by MAX_HEADER_BYTES
MAX_USER_AGENT = 4096
#: The largest SESSION_LIMIT_PER_USER: a cap any higher would bound nothing.
MAX_SESSION_LIMIT_PER_USER = 10_000
#: OWASP's Argon2id configurations of equal strength (memory in KiB, passes; one lane), weakest allowed:
#: PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_TIME_COST must reach both figures of one of them.
OWASP_ARGON2ID_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
_CACHE_ACCEPTS = "memory, noop, redis://host:port/db or rediss://host:port/db[?ssl_ca_certs=PATH]"


class SettingsError(ValueError):
    """A setting has a value the service cannot use; `errors` lists every such setting (this one alone,
    or all that Settings.from_env found, in the order of the settings)."""

    def __init__(self, variable: str, value: str, accepts: str) -> None:
        super().__init__(f"{variable}={_redact(value)!r} is not valid: expected {accepts}")
        self.variable = variable
        self.errors: tuple[SettingsError, ...] = (self,)

    @classmethod
    def of(cls, errors: Sequence[SettingsError]) -> SettingsError:
        """One error standing for all of `errors`: the first, carrying the others too."""
        first = errors[0]
        first.errors = tuple(errors)
        return first

    def lines(self) -> list[str]:
        """One line per bad setting."""
        return [str(error) for error in self.errors]


def is_redis_url(url: str) -> bool:
    """Whether SESSION_CACHE names a Redis server (redis:// or rediss://)."""
    return url.split("://", 1)[0] in REDIS_SCHEMES if "://" in url else False


def meets_owasp_minimum(memory_kib: int, time_cost: int) -> bool:
    """Whether Argon2id at these costs (one lane) is at least one of OWASP's minimum configurations."""
    return any(memory_kib >= memory and time_cost >= passes for memory, passes in OWASP_ARGON2ID_MINIMUMS)


def _weak_hashing_error(settings: Settings) -> SettingsError:
    """Both variables in one line: the two together fall short, whichever was set."""
    minimums = [f"{memory}/{passes}" for memory, passes in OWASP_ARGON2ID_MINIMUMS]
    accepts = f"at least one of OWASP's Argon2id minimums (KiB/passes): {', '.join(minimums[:-1])} or {minimums[-1]}"
    value = f"{settings.password_hash_memory_kib}/{settings.password_hash_time_cost}"
    return SettingsError("PASSWORD_HASH_MEMORY_KIB/PASSWORD_HASH_TIME_COST", value, accepts)


def _redact(value: str) -> str:
    """Hide the credentials of a URL so an error line never prints a password."""
    scheme, sep, rest = value.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return value


def parse_duration(value: str) -> float:
    """Seconds from '3600', '90s', '15m', '2h', '7d', '1w' or '1y'; raises ValueError."""
    match = _DURATION.match(value.strip().lower())
    if not match:
        raise ValueError(value)
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(value)
    return seconds


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite://data/sessions.sqlite3"
    session_cache: str = "memory"
    session_cache_size: int = 10000
    #: with SESSION_CACHE=redis://…, an in-process first tier of SESSION_CACHE_SIZE sessions in front of Redis
    session_cache_first_tier: bool = True
    session_duration: float = 31536000.0
    session_cache_ttl: float = 300.0
    session_cache_timeout_ms: int = 50
    #: tokens remembered in this process as naming no session (0: none), so a replay costs no query
    session_negative_cache_size: int = 10000
    #: seconds such a token is remembered at most; None: nothing is remembered
    session_negative_cache_ttl: float | None = 60.0
    token_methods: tuple[str, ...] = TOKEN_METHODS
    auth_token_header: str = "auth-token"
    session_cookie_name: str = "session"
    cookie_secure: bool = False
    channel_token_header: str = "channel-token"
    superadmin_identifier: str = "superadmin"
    superadmin_password: str = "superadmin"
    require_verification: bool = True
    log_level: str = "info"
    # Sharing one cache and database between instances, and housekeeping.
    session_cache_namespace: str = "sessions"
    #: seconds between clean-ups of expired sessions; None: no scheduled clean-up
    session_clean_interval: float | None = None
    #: sessions per clean transaction (bench/README.md, "Scale": 5,000 as fast as 10,000, twice as fast as 1,000)
    session_clean_batch_size: int = 5000
    # Limits on what a request may ask.
    max_request_bytes: int = 65536
    #: request line and headers together (uvicorn's httptools parser sets no limit)
    max_header_bytes: int = 16384
    max_query_tokens: int = 2000
    max_query_aliases: int = 15
    max_query_depth: int = 10
    # Browsers.
    cors_allow_origins: tuple[str, ...] = ()
    graphiql: bool = True
    introspection: bool = True
    #: peers (a reverse proxy) whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default
    forwarded_allow_ips: tuple[str, ...] = ()
    # Brute force and lifetime: (attempts, window in seconds) per identifier and per client address.
    login_rate_limit: tuple[int, float] | None = (10, 180.0)
    #: seconds after creation when a session ends however active it is; None: no absolute limit
    session_max_lifetime: float | None = None
    #: seconds a password proof (login, reauthenticate) counts as fresh for the operations that demand one
    session_fresh_age: float = 600.0
    #: seconds after its creation when a session made for another user (impersonation) ends at the latest
    impersonation_max_lifetime: float = 3600.0
    #: live sessions a user may hold: a login beyond it ends the oldest (REVOKED "session-limit")
    session_limit_per_user: int = 50
    #: seconds session events are kept; the clean job removes older ones
    session_event_retention: float = 30 * 86400.0
    # What a session records of where it is used (see server/services/client_info.py).
    #: seconds within which a session's lastActiveAt, address and user agent are kept current
    session_activity_resolution: float = 300.0
    session_client_address: str = "truncated"
    session_user_agent_max: int = 256
    # Password hashing (Argon2id, see server/services/passwords.py).
    #: memory per hash in KiB, and passes over it: OWASP's minimum by default (19 MiB, 2 passes)
    password_hash_memory_kib: int = 19456
    password_hash_time_cost: int = 2
    #: threads hashing at once in each process; 0: its share of the CPUs (among WEB_CONCURRENCY) less one
    password_hash_threads: int = 0
    #: hashes that may wait for a thread; a login past them fails at once (RATE_LIMITED)
    password_hash_queue: int = 256
    # Processes and observability.
    #: worker processes serving one port (uvicorn's WEB_CONCURRENCY); each is an instance of its own
    web_concurrency: int = 1
    #: whether /metrics (Prometheus text format) is served
    metrics: bool = True
    #: (host, port) of a listener of its own for /metrics; None: /metrics is on the main port
    metrics_address: tuple[str, int] | None = None

    @property
    def uses_cookie(self) -> bool:
        return "cookie" in self.token_methods

    @property
    def uses_bearer(self) -> bool:
        return "bearer" in self.token_methods

    @property
    def session_cache_timeout(self) -> float:
        return self.session_cache_timeout_ms / 1000

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level.upper()]

    @property
    def hashing_threads(self) -> int:
        """PASSWORD_HASH_THREADS, or this process's share of the cores less the one its event loop needs."""
        return self.password_hash_threads or max(1, (os.cpu_count() or 1) // self.web_concurrency - 1)

    @property
    def uses_redis(self) -> bool:
        """Whether the session cache (and the login limiter's counters) live in Redis."""
        return is_redis_url(self.session_cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """The settings `environ` gives; SettingsError listing every bad variable (see `errors`)."""
        reader = _Reader(environ)
        database_url = reader.database_url("DATABASE_URL", cls.database_url)
        database_is_sqlite = database_url.startswith("sqlite://")
        settings = cls(
            host=reader.host("HOST", cls.host),
            port=reader.integer("PORT", cls.port, low=0, high=65535),
            database_url=database_url,
            session_cache=reader.cache_url("SESSION_CACHE", cls.session_cache),
            session_cache_size=reader.integer("SESSION_CACHE_SIZE", cls.session_cache_size, low=1, high=10**8),
            session_cache_first_tier=reader.boolean("SESSION_CACHE_FIRST_TIER", cls.session_cache_first_tier),
            session_duration=reader.duration("SESSION_DURATION", "1y"),
            session_cache_ttl=reader.duration("SESSION_CACHE_TTL", "300"),
            session_cache_timeout_ms=reader.integer(
                "SESSION_CACHE_TIMEOUT_MS", cls.session_cache_timeout_ms, low=1, high=60000
            ),
            session_negative_cache_size=reader.integer(
                "SESSION_NEGATIVE_CACHE_SIZE", cls.session_negative_cache_size, low=0, high=10**8
            ),
            session_negative_cache_ttl=reader.optional_duration("SESSION_NEGATIVE_CACHE_TTL", "60s"),
            token_methods=reader.token_methods("TOKEN_METHOD"),
            auth_token_header=reader.pattern("AUTH_TOKEN_HEADER", cls.auth_token_header, _HEADER_NAME, "a header name"),
            session_cookie_name=reader.pattern(
                "SESSION_COOKIE_NAME", cls.session_cookie_name, _COOKIE_NAME, "a cookie name"
            ),
            cookie_secure=reader.boolean("COOKIE_SECURE", cls.cookie_secure),
            channel_token_header=reader.pattern(
                "CHANNEL_TOKEN_HEADER", cls.channel_token_header, _HEADER_NAME, "a header name"
            ),
            superadmin_identifier=reader.pattern(
                "SUPERADMIN_IDENTIFIER", cls.superadmin_identifier, _IDENTIFIER, "at most 255 characters"
            ),
            superadmin_password=reader.secret("SUPERADMIN_PASSWORD", cls.superadmin_password),
            require_verification=reader.boolean("REQUIRE_VERIFICATION", cls.require_verification),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, LOG_LEVELS),
            session_cache_namespace=reader.pattern(
                "SESSION_CACHE_NAMESPACE", cls.session_cache_namespace, _NAMESPACE, "1 to 64 of A-Z a-z 0-9 _ . -"
            ),
            session_clean_interval=reader.optional_duration(
                "SESSION_CLEAN_INTERVAL", "off" if database_is_sqlite else "1h"
            ),
            session_clean_batch_size=reader.integer(
                "SESSION_CLEAN_BATCH_SIZE", cls.session_clean_batch_size, low=1, high=100_000
            ),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", cls.max_request_bytes, low=1024, high=64 * 2**20),
            max_header_bytes=reader.integer("MAX_HEADER_BYTES", cls.max_header_bytes, low=1024, high=2**20),
            max_query_tokens=reader.integer("MAX_QUERY_TOKENS", cls.max_query_tokens, low=10, high=100_000),
            max_query_aliases=reader.integer("MAX_QUERY_ALIASES", cls.max_query_aliases, low=1, high=1000),
            max_query_depth=reader.integer("MAX_QUERY_DEPTH", cls.max_query_depth, low=2, high=100),
            cors_allow_origins=reader.origins("CORS_ALLOW_ORIGINS"),
            graphiql=reader.boolean("GRAPHIQL", cls.graphiql),
            introspection=reader.boolean("INTROSPECTION", cls.introspection),
            forwarded_allow_ips=reader.addresses("FORWARDED_ALLOW_IPS"),
            login_rate_limit=reader.rate("LOGIN_RATE_LIMIT", "10/3m"),
            session_max_lifetime=reader.optional_duration("SESSION_MAX_LIFETIME", "off"),
            session_fresh_age=reader.duration("SESSION_FRESH_AGE", "10m"),
            impersonation_max_lifetime=reader.duration("IMPERSONATION_MAX_LIFETIME", "1h"),
            session_limit_per_user=reader.integer(
                "SESSION_LIMIT_PER_USER", cls.session_limit_per_user, low=1, high=MAX_SESSION_LIMIT_PER_USER
            ),
            session_event_retention=reader.duration("SESSION_EVENT_RETENTION", "30d"),
            session_activity_resolution=reader.duration("SESSION_ACTIVITY_RESOLUTION", "5m"),
            session_client_address=reader.choice(
                "SESSION_CLIENT_ADDRESS", cls.session_client_address, CLIENT_ADDRESS_MODES
            ),
            session_user_agent_max=reader.integer(
                "SESSION_USER_AGENT_MAX", cls.session_user_agent_max, low=1, high=MAX_USER_AGENT
            ),
            password_hash_memory_kib=reader.integer(
                "PASSWORD_HASH_MEMORY_KIB", cls.password_hash_memory_kib, low=7168, high=4 * 2**20
            ),
            password_hash_time_cost=reader.integer(
                "PASSWORD_HASH_TIME_COST", cls.password_hash_time_cost, low=1, high=100
            ),
            password_hash_threads=reader.integer("PASSWORD_HASH_THREADS", cls.password_hash_threads, low=0, high=256),
            password_hash_queue=reader.integer("PASSWORD_HASH_QUEUE", cls.password_hash_queue, low=0, high=100_000),
            web_concurrency=reader.integer("WEB_CONCURRENCY", cls.web_concurrency, low=1, high=MAX_WORKERS),
            metrics=reader.boolean("METRICS", cls.metrics),
            metrics_address=reader.address("METRICS_ADDRESS"),
        )
        if not meets_owasp_minimum(settings.password_hash_memory_kib, settings.password_hash_time_cost):
            reader.errors.append(_weak_hashing_error(settings))
        if reader.errors:
            raise SettingsError.of(reader.errors)
        return settings


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _collected(read: Callable[Concatenate[_Reader, str, _P], _T]) -> Callable[Concatenate[_Reader, str, _P], _T]:
    """A reader method that notes a bad value and goes on with the default, so that every bad
    variable is reported at once (a default is always valid)."""

    @functools.wraps(read)
    def collecting(reader: _Reader, name: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return read(reader, name, *args, **kwargs)
        except SettingsError as error:
            reader.errors.append(error)
            return read(_Reader({}), name, *args, **kwargs)

    return collecting


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.errors: list[SettingsError] = []

    def _raw(self, name: str, default: str) -> str:
        value = self._environ.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    @_collected
    def text(self, name: str, default: str) -> str:
        return self._raw(name, default)

    @_collected
    def host(self, name: str, default: str) -> str:
        value = self._raw(name, default)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOST_NAME.match(value):
                raise SettingsError(name, value, "a host name or an IP address, without scheme or port") from None
        return value

    @_collected
    def secret(self, name: str, default: str) -> str:
        """Taken as it is: spaces may belong to a password, and a blank one is refused, not defaulted."""
        value = self._environ.get(name)
        if value is None or value == "":
            return default
        if not value.strip():
            raise SettingsError(name, "", "a password that is not only white space")
        return value

    @_collected
    def pattern(self, name: str, default: str, pattern: re.Pattern[str], accepts: str) -> str:
        value = self._raw(name, default)
        if not pattern.match(value):
            raise SettingsError(name, value, accepts)
        return value

    @_collected
    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self._raw(name, str(default))
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(name, value, f"a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise SettingsError(name, value, f"a whole number from {low} to {high}")
        return number

    @_collected
    def duration(self, name: str, default: str) -> float:
        value = self._raw(name, default)
        try:
            return parse_duration(value)
        except ValueError:
            accepts = "a positive number of seconds, or a number with s, m, h, d, w or y"
            raise SettingsError(name, value, accepts) from None

    @_collected
    def optional_duration(self, name: str, default: str) -> float | None:
        """A duration, or None for "off"."""
        value = self._raw(name, default)
        if value.lower() in ("off", "none", "0"):
            return None
        try:
            return parse_duration(value)
        except ValueError:
            raise SettingsError(name, value, "off, or a duration such as 3600, 30m, 1h or 7d") from None

    @_collected
    def rate(self, name: str, default: str) -> tuple[int, float] | None:
        """ "N/duration" (N attempts per window), or None for "off"."""
        value = self._raw(name, default)
        if value.lower() == "off":
            return None
        count, _, window = value.partition("/")
        try:
            attempts, seconds = int(count), parse_duration(window)
        except ValueError:
            raise SettingsError(name, value, "off, or attempts per window such as 10/3m") from None
        if not 0 < attempts <= 100_000:
            raise SettingsError(name, value, "off, or attempts per window such as 10/3m")
        return attempts, seconds

    @_collected
    def origins(self, name: str) -> tuple[str, ...]:
        """Exact origins (scheme://host[:port]); a wildcard is refused because cookies are credentials."""
        value = self._raw(name, "")
        origins = tuple(dict.fromkeys(part.strip().rstrip("/") for part in value.split(",") if part.strip()))
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
                raise SettingsError(name, value, "a comma-separated list of origins such as https://shop.example")
        return origins

    @_collected
    def addresses(self, name: str) -> tuple[str, ...]:
        """IP addresses and networks (10.0.0.0/8), or `*` for every peer; none when unset."""
        value = self._raw(name, "")
        parts = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if parts == ("*",):
            return parts
        try:
            return tuple(
                str(ipaddress.ip_network(part) if "/" in part else ipaddress.ip_address(part)) for part in parts
            )
        except ValueError:
            raise SettingsError(name, value, "IP addresses or networks such as 10.0.0.1,10.1.0.0/16, or *") from None

    @_collected
    def address(self, name: str) -> tuple[str, int] | None:
        """`host:port` (`[v6 address]:port` for IPv6), or None when unset."""
        value = self._raw(name, "")
        if not value:
            return None
        accepts = "host:port, such as 127.0.0.1:9100"
        host, sep, port = value.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError(name, value, accepts)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST_NAME.match(host):
                raise SettingsError(name, value, accepts) from None
        return host, int(port)

    @_collected
    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name, "true" if default else "false").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingsError(name, value, "true or false")

    @_collected
    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name, default).lower()
        if value not in choices:
            raise SettingsError(name, value, "one of " + ", ".join(choices))
        return value

    @_collected
    def token_methods(self, name: str) -> tuple[str, ...]:
        value = self._raw(name, ",".join(TOKEN_METHODS))
        methods = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
        if not methods or any(method not in TOKEN_METHODS for method in methods):
            raise SettingsError(name, value, "cookie, bearer, or cookie,bearer")
        return methods

    @_collected
    def database_url(self, name: str, default: str) -> str:
        value = self._raw(name, default)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme == "sqlite" and len(value) > len("sqlite://"):
            return value
        if scheme in ("postgres", "postgresql", "asyncpg"):
            parts = urlsplit(value)
            if parts.hostname and parts.path.strip("/"):
                return value
        raise SettingsError(name, value, "sqlite://PATH or postgres://user:pass@host:port/db")

    @_collected
    def cache_url(self, name: str, default: str) -> str:
        value = self._raw(name, default)
        if value in ("memory", "noop"):
            return value
        parts = urlsplit(value)
        if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
            raise SettingsError(name, value, _CACHE_ACCEPTS)
        try:
            _ = parts.port  # raises ValueError when out of range
            db = parts.path.strip("/")
            if db and not db.isdigit():
                raise ValueError(db)
            options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
            for option, option_value in options:
                if parts.scheme != "rediss" or option not in _TLS_OPTIONS:
                    raise ValueError(option)
                choices = _TLS_OPTIONS[option]
                if (choices is not None and option_value not in choices) or not option_value:
                    raise ValueError(option_value)
        except ValueError:
            raise SettingsError(name, value, _CACHE_ACCEPTS) from None
        return value
