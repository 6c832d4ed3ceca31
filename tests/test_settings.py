"""Settings.from_env: the documented defaults of RUNNING.md, every variable parsed, bad values named."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection

from server.clients import redis_client
from server.env_file import EnvFileError, environment, read_env_file
from server.settings import Settings, SettingsError

RUNNING_MD = Path(__file__).resolve().parents[2] / "shared/contract/RUNNING.md"

DEFAULTS = Settings(
    host="127.0.0.1",
    port=8000,
    database_url="sqlite://data/sessions.sqlite3",
    session_cache="memory",
    session_cache_size=10000,
    session_duration=31536000.0,
    session_cache_ttl=300.0,
    session_cache_timeout_ms=50,
    token_methods=("cookie", "bearer"),
    auth_token_header="auth-token",
    session_cookie_name="session",
    cookie_secure=False,
    channel_token_header="channel-token",
    superadmin_identifier="superadmin",
    superadmin_password="superadmin",
    require_verification=True,
    log_level="info",
)


def test_empty_environment_gives_the_documented_defaults() -> None:
    assert Settings.from_env({}) == DEFAULTS


def test_blank_values_fall_back_to_the_defaults() -> None:
    assert Settings.from_env({"PORT": "", "SESSION_DURATION": "  ", "TOKEN_METHOD": ""}) == DEFAULTS


def test_process_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    assert Settings.from_env({}).port == 8000


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800), ("1y", 31536000), ("3600", 3600)],
)
@pytest.mark.parametrize(
    ("variable", "attribute"), [("SESSION_DURATION", "session_duration"), ("SESSION_CACHE_TTL", "session_cache_ttl")]
)
def test_durations_are_parsed(variable: str, attribute: str, value: str, seconds: int) -> None:
    assert getattr(Settings.from_env({variable: value}), attribute) == seconds


@pytest.mark.parametrize("value", ["memory", "noop", "redis://h:6379/0", "redis://cache.internal"])
def test_session_cache_urls_are_accepted(value: str) -> None:
    assert Settings.from_env({"SESSION_CACHE": value}).session_cache == value


@pytest.mark.parametrize(
    ("value", "methods", "cookie", "bearer"),
    [
        ("cookie", ("cookie",), True, False),
        ("bearer", ("bearer",), False, True),
        ("cookie,bearer", ("cookie", "bearer"), True, True),
        (" Bearer , COOKIE ", ("bearer", "cookie"), True, True),
        ("cookie,cookie", ("cookie",), True, False),
    ],
)
def test_token_method_variants(value: str, methods: tuple[str, ...], cookie: bool, bearer: bool) -> None:
    settings = Settings.from_env({"TOKEN_METHOD": value})
    assert (settings.token_methods, settings.uses_cookie, settings.uses_bearer) == (methods, cookie, bearer)


def test_every_variable_is_read() -> None:
    environ = {
        "HOST": "0.0.0.0",
        "PORT": "8080",
        "DATABASE_URL": "postgres://app:pw@db.internal:5432/sessions",
        "SESSION_CACHE": "redis://h:6379/0",
        "SESSION_CACHE_SIZE": "25",
        "SESSION_DURATION": "2h",
        "SESSION_CACHE_TTL": "15m",
        "SESSION_CACHE_TIMEOUT_MS": "120",
        "TOKEN_METHOD": "bearer",
        "AUTH_TOKEN_HEADER": "x-auth",
        "SESSION_COOKIE_NAME": "sid",
        "COOKIE_SECURE": "true",
        "CHANNEL_TOKEN_HEADER": "x-channel",
        "SUPERADMIN_IDENTIFIER": "root",
        "SUPERADMIN_PASSWORD": "correct horse",
        "REQUIRE_VERIFICATION": "false",
        "LOG_LEVEL": "DEBUG",
        "SESSION_CACHE_NAMESPACE": "shop-a",
        "SESSION_CLEAN_INTERVAL": "15m",
        "SESSION_CLEAN_BATCH_SIZE": "500",
        "MAX_REQUEST_BYTES": "4096",
        "MAX_QUERY_TOKENS": "300",
        "MAX_QUERY_ALIASES": "5",
        "MAX_QUERY_DEPTH": "6",
        "CORS_ALLOW_ORIGINS": "https://shop.example, http://localhost:3000/",
        "GRAPHIQL": "false",
        "INTROSPECTION": "false",
        "LOGIN_RATE_LIMIT": "5/1m",
        "SESSION_MAX_LIFETIME": "30d",
    }
    expected: dict[str, Any] = {
        "host": "0.0.0.0",
        "port": 8080,
        "database_url": "postgres://app:pw@db.internal:5432/sessions",
        "session_cache": "redis://h:6379/0",
        "session_cache_size": 25,
        "session_duration": 7200.0,
        "session_cache_ttl": 900.0,
        "session_cache_timeout_ms": 120,
        "token_methods": ("bearer",),
        "auth_token_header": "x-auth",
        "session_cookie_name": "sid",
        "cookie_secure": True,
        "channel_token_header": "x-channel",
        "superadmin_identifier": "root",
        "superadmin_password": "correct horse",
        "require_verification": False,
        "log_level": "debug",
        "session_cache_namespace": "shop-a",
        "session_clean_interval": 900.0,
        "session_clean_batch_size": 500,
        "max_request_bytes": 4096,
        "max_query_tokens": 300,
        "max_query_aliases": 5,
        "max_query_depth": 6,
        "cors_allow_origins": ("https://shop.example", "http://localhost:3000"),
        "graphiql": False,
        "introspection": False,
        "login_rate_limit": (5, 60.0),
        "session_max_lifetime": 2592000.0,
    }
    assert Settings.from_env(environ) == Settings(**expected)


def test_fresh_proof_age_and_impersonation_lifetime_are_durations() -> None:
    assert (Settings().session_fresh_age, Settings().impersonation_max_lifetime) == (600.0, 3600.0)
    configured = Settings.from_env({"SESSION_FRESH_AGE": "90s", "IMPERSONATION_MAX_LIFETIME": "2h"})
    assert (configured.session_fresh_age, configured.impersonation_max_lifetime) == (90.0, 7200.0)
    assert Settings.from_env({"SESSION_FRESH_AGE": "300"}).session_fresh_age == 300.0


def test_session_limit_per_user_and_event_retention() -> None:
    assert (Settings().session_limit_per_user, Settings().session_event_retention) == (50, 30 * 86400.0)
    configured = Settings.from_env({"SESSION_LIMIT_PER_USER": "5", "SESSION_EVENT_RETENTION": "90d"})
    assert (configured.session_limit_per_user, configured.session_event_retention) == (5, 90 * 86400.0)
    assert Settings.from_env({"SESSION_LIMIT_PER_USER": "10000"}).session_limit_per_user == 10_000


def test_the_negative_cache_has_a_size_and_a_lifetime_and_zero_turns_it_off() -> None:
    assert (Settings().session_negative_cache_size, Settings().session_negative_cache_ttl) == (10000, 60.0)
    configured = Settings.from_env({"SESSION_NEGATIVE_CACHE_SIZE": "500", "SESSION_NEGATIVE_CACHE_TTL": "5m"})
    assert (configured.session_negative_cache_size, configured.session_negative_cache_ttl) == (500, 300.0)
    assert Settings.from_env({"SESSION_NEGATIVE_CACHE_SIZE": "0"}).session_negative_cache_size == 0
    assert Settings.from_env({"SESSION_NEGATIVE_CACHE_TTL": "0"}).session_negative_cache_ttl is None
    assert Settings.from_env({"SESSION_NEGATIVE_CACHE_TTL": "off"}).session_negative_cache_ttl is None


def test_scheduled_clean_up_is_off_on_sqlite_and_hourly_on_postgres_by_default() -> None:
    assert Settings.from_env({}).session_clean_interval is None
    assert Settings.from_env({"DATABASE_URL": "postgres://u@h/db"}).session_clean_interval == 3600.0
    assert (
        Settings.from_env({"DATABASE_URL": "postgres://u@h/db", "SESSION_CLEAN_INTERVAL": "off"}).session_clean_interval
        is None
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSION_CACHE_NAMESPACE", "a:b"),
        ("SESSION_CLEAN_INTERVAL", "soon"),
        ("SESSION_CLEAN_BATCH_SIZE", "0"),
        ("MAX_REQUEST_BYTES", "10"),
        ("MAX_QUERY_TOKENS", "lots"),
        ("MAX_QUERY_ALIASES", "0"),
        ("MAX_QUERY_DEPTH", "1"),
        ("CORS_ALLOW_ORIGINS", "*"),
        ("CORS_ALLOW_ORIGINS", "https://shop.example/path"),
        ("GRAPHIQL", "perhaps"),
        ("INTROSPECTION", "2"),
        ("LOGIN_RATE_LIMIT", "ten/3m"),
        ("LOGIN_RATE_LIMIT", "0/3m"),
        ("SESSION_MAX_LIFETIME", "forever"),
        ("SESSION_FRESH_AGE", "0"),
        ("SESSION_FRESH_AGE", "soon"),
        ("IMPERSONATION_MAX_LIFETIME", "off"),
        ("IMPERSONATION_MAX_LIFETIME", "-1h"),
        ("SESSION_LIMIT_PER_USER", "0"),
        ("SESSION_LIMIT_PER_USER", "off"),
        ("SESSION_LIMIT_PER_USER", "10001"),
        ("SESSION_EVENT_RETENTION", "off"),
        ("SESSION_EVENT_RETENTION", "0"),
        ("SESSION_EVENT_RETENTION", "a month"),
        ("SESSION_NEGATIVE_CACHE_SIZE", "-1"),
        ("SESSION_NEGATIVE_CACHE_SIZE", "lots"),
        ("SESSION_NEGATIVE_CACHE_TTL", "-60"),
        ("SESSION_NEGATIVE_CACHE_TTL", "a minute"),
    ],
)
def test_a_bad_value_of_an_added_setting_names_it(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value).startswith(f"{variable}=")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("no", False)])
@pytest.mark.parametrize(
    ("variable", "attribute"), [("COOKIE_SECURE", "cookie_secure"), ("REQUIRE_VERIFICATION", "require_verification")]
)
def test_booleans_are_parsed(variable: str, attribute: str, value: str, expected: bool) -> None:
    assert getattr(Settings.from_env({variable: value}), attribute) is expected


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "localhost", "sessions.internal"])
def test_hosts_are_accepted(host: str) -> None:
    assert Settings.from_env({"HOST": host}).host == host


@pytest.mark.parametrize(
    "url", ["sqlite://:memory:", "sqlite:///tmp/x.sqlite3", "postgres://u@h/db", "postgres://u:p@h:5432/db"]
)
def test_database_urls_are_accepted(url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


BAD_VALUES = [
    ("HOST", "no such host"),
    ("HOST", "http://0.0.0.0"),
    ("HOST", "0.0.0.0:8000"),
    ("PORT", "http"),
    ("PORT", "70000"),
    ("DATABASE_URL", "mongodb://h/db"),
    ("DATABASE_URL", "mysql://u@h/db"),
    ("DATABASE_URL", "sqlite://"),
    ("DATABASE_URL", "postgres://user@/"),
    ("SESSION_CACHE", "memcache"),
    ("SESSION_CACHE", "redis://h:port/0"),
    ("SESSION_CACHE", "redis://h:6379/zero"),
    ("SESSION_CACHE_SIZE", "0"),
    ("SESSION_CACHE_SIZE", "many"),
    ("SESSION_DURATION", "1 fortnight"),
    ("SESSION_DURATION", "0"),
    ("SESSION_DURATION", "-5m"),
    ("SESSION_CACHE_TTL", "soon"),
    ("SESSION_CACHE_TIMEOUT_MS", "50ms"),
    ("SESSION_CACHE_TIMEOUT_MS", "0"),
    ("TOKEN_METHOD", "header"),
    ("TOKEN_METHOD", "cookie,session"),
    ("TOKEN_METHOD", ","),
    ("AUTH_TOKEN_HEADER", "auth token"),
    ("SESSION_COOKIE_NAME", "a;b"),
    ("COOKIE_SECURE", "sometimes"),
    ("CHANNEL_TOKEN_HEADER", "channel:token"),
    ("SUPERADMIN_IDENTIFIER", "a" * 256),
    ("SUPERADMIN_PASSWORD", "   "),
    ("REQUIRE_VERIFICATION", "maybe"),
    ("LOG_LEVEL", "verbose"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES, ids=[f"{v}={x[:20]}" for v, x in BAD_VALUES])
def test_bad_value_raises_an_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    message = str(raised.value)
    assert message.startswith(f"{variable}=") and "expected" in message
    assert "\n" not in message


def _documented_variables() -> set[str]:
    if not RUNNING_MD.is_file():
        pytest.skip(f"the shared contract is not checked out at {RUNNING_MD}")
    section = RUNNING_MD.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)(?:=[^`]*)?`", section))


class _RecordingEnviron(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_every_documented_variable_is_read() -> None:
    environ = _RecordingEnviron()
    Settings.from_env(environ)
    assert _documented_variables() - environ.read == set()


def test_every_documented_variable_has_a_bad_value_case() -> None:
    assert _documented_variables() == {variable for variable, _ in BAD_VALUES}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DATABASE_URL", "postgres://app:Sup3r-s3cret@/"), ("SESSION_CACHE", "redis://:Sup3r-s3cret@h:port/0")],
)
def test_error_never_shows_a_password(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert variable in str(raised.value)
    assert "Sup3r-s3cret" not in str(raised.value)


def test_every_bad_variable_is_reported_together_in_the_order_of_the_settings() -> None:
    environ = {"PORT": "http", "TOKEN_METHOD": "header", "SESSION_DURATION": "forever", "LOG_LEVEL": "info"}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    assert [error.variable for error in raised.value.errors] == ["PORT", "SESSION_DURATION", "TOKEN_METHOD"]
    assert raised.value.lines() == [
        "PORT='http' is not valid: expected a whole number from 0 to 65535",
        "SESSION_DURATION='forever' is not valid: expected a positive number of seconds, or a number with s, m, h,"
        " d, w or y",
        "TOKEN_METHOD='header' is not valid: expected cookie, bearer, or cookie,bearer",
    ]


def test_one_bad_variable_is_one_error() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PORT": "http"})
    assert raised.value.errors == (raised.value,)
    assert raised.value.lines() == [str(raised.value)]


@pytest.mark.parametrize(
    "value",
    [
        "rediss://cache.internal:6380/0",
        "rediss://:pw@cache.internal/1",
        "rediss://cache.internal/0?ssl_ca_certs=/etc/ssl/private-ca.pem",
        "rediss://cache.internal/0?ssl_cert_reqs=none",
        "rediss://cache.internal/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem",
    ],
)
def test_rediss_urls_are_accepted(value: str) -> None:
    settings = Settings.from_env({"SESSION_CACHE": value})
    assert (settings.session_cache, settings.uses_redis) == (value, True)


@pytest.mark.parametrize(
    "value",
    [
        "rediss://h/0?ssl_cert_reqs=optional",
        "rediss://h/0?ssl_ca_certs=",
        "rediss://h/0?verify=no",
        "redis://h/0?ssl_cert_reqs=none",
        "rediss:///0",
        "redis+tls://h/0",
    ],
)
def test_bad_redis_urls_are_refused(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SESSION_CACHE": value})
    assert raised.value.variable == "SESSION_CACHE" and "rediss://" in str(raised.value)


@pytest.mark.parametrize(("value", "uses_redis"), [("memory", False), ("noop", False), ("redis://h/0", True)])
def test_uses_redis(value: str, uses_redis: bool) -> None:
    assert Settings.from_env({"SESSION_CACHE": value}).uses_redis is uses_redis


def test_a_rediss_client_verifies_the_certificate_and_the_host_name_by_default() -> None:
    client = redis_client("rediss://:pw@cache.internal:6380/2", socket_timeout=0.05)
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is SSLConnection
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("cache.internal", 6380, 2, "pw")
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"], kwargs["ssl_ca_certs"]) == ("required", True, None)


def test_a_rediss_client_takes_a_ca_bundle_or_no_verification_from_the_url() -> None:
    trusting = redis_client("rediss://h/0?ssl_ca_certs=/etc/ca.pem", socket_timeout=0.05).connection_pool
    assert (trusting.connection_kwargs["ssl_ca_certs"], trusting.connection_kwargs["ssl_cert_reqs"]) == (
        "/etc/ca.pem",
        "required",
    )
    unverified = redis_client("rediss://h/0?ssl_cert_reqs=none", socket_timeout=0.05).connection_pool
    assert (unverified.connection_kwargs["ssl_cert_reqs"], unverified.connection_kwargs["ssl_check_hostname"]) == (
        "none",
        False,
    )


def test_a_redis_client_is_plain_tcp() -> None:
    assert redis_client("redis://h/0", socket_timeout=0.05).connection_pool.connection_class is Connection


# --- The .env file ------------------------------------------------------------------------------

ENV_FILE_TEXT = """\
# a comment, then a blank line

PORT=8080
export HOST=0.0.0.0
SESSION_DURATION = 2h   # trailing comment
SUPERADMIN_PASSWORD='single # quoted $kept \\n'
AUTH_TOKEN_HEADER="x-auth"  # comment
SESSION_COOKIE_NAME="a\\"b\\\\c\\n"
LOG_LEVEL=warning
LOG_LEVEL=debug
CORS_ALLOW_ORIGINS=
"""


def test_the_env_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(ENV_FILE_TEXT)
    assert read_env_file(path) == {
        "PORT": "8080",
        "HOST": "0.0.0.0",
        "SESSION_DURATION": "2h",
        "SUPERADMIN_PASSWORD": "single # quoted $kept \\n",
        "AUTH_TOKEN_HEADER": "x-auth",
        "SESSION_COOKIE_NAME": 'a"b\\c\n',
        "LOG_LEVEL": "debug",
        "CORS_ALLOW_ORIGINS": "",
    }


def test_the_real_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=8080\nHOST=0.0.0.0\nLOG_LEVEL=debug\n")
    merged = environment({"PORT": "9090", "LOG_LEVEL": "", "PATH": "/bin"}, tmp_path)
    assert merged == {"PORT": "9090", "HOST": "0.0.0.0", "LOG_LEVEL": "", "PATH": "/bin"}
    settings = Settings.from_env(merged)
    assert (settings.port, settings.host, settings.log_level) == (9090, "0.0.0.0", "info")


def test_without_an_env_file_the_environment_is_taken_as_it_is(tmp_path: Path) -> None:
    assert environment({"PORT": "9090"}, tmp_path) == {"PORT": "9090"}


def test_every_bad_line_of_the_env_file_is_named_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text('PORT=8080\nSUPERADMIN_PASSWORD=\'s3cret\nthis is not a setting\nX="a" trailing\n1X=2\n')
    with pytest.raises(EnvFileError) as raised:
        read_env_file(path)
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        ".env line 2",
        ".env line 3",
        ".env line 4",
        ".env line 5",
    ]
    assert "s3cret" not in str(raised.value)


def test_password_hashing_defaults_to_owasps_minimum_and_the_cpus_the_event_loops_leave() -> None:
    settings = Settings.from_env({})
    assert (settings.password_hash_memory_kib, settings.password_hash_time_cost) == (19456, 2)
    assert (settings.password_hash_threads, settings.password_hash_queue) == (0, 256)
    assert settings.hashing_threads == max(1, (os.cpu_count() or 1) - 1)
    assert Settings.from_env({"PASSWORD_HASH_THREADS": "3"}).hashing_threads == 3
    assert Settings.from_env({"WEB_CONCURRENCY": "64"}).hashing_threads == 1


@pytest.mark.parametrize(("memory", "passes"), [("47104", "1"), ("12288", "3"), ("7168", "5"), ("65536", "3")])
def test_password_hashing_costs_of_owasps_equal_strength_or_more_are_accepted(memory: str, passes: str) -> None:
    settings = Settings.from_env({"PASSWORD_HASH_MEMORY_KIB": memory, "PASSWORD_HASH_TIME_COST": passes})
    assert (settings.password_hash_memory_kib, settings.password_hash_time_cost) == (int(memory), int(passes))


@pytest.mark.parametrize(("memory", "passes"), [("19456", "1"), ("12288", "2"), ("46080", "1"), ("9216", "3")])
def test_password_hashing_costs_below_owasps_minimum_are_refused_in_one_line(memory: str, passes: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PASSWORD_HASH_MEMORY_KIB": memory, "PASSWORD_HASH_TIME_COST": passes})
    assert raised.value.lines() == [
        f"PASSWORD_HASH_MEMORY_KIB/PASSWORD_HASH_TIME_COST='{memory}/{passes}' is not valid: expected at least"
        " one of OWASP's Argon2id minimums (KiB/passes): 47104/1, 19456/2, 12288/3, 9216/4 or 7168/5"
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("PASSWORD_HASH_MEMORY_KIB", "19 MiB"),
        ("PASSWORD_HASH_TIME_COST", "0"),
        ("PASSWORD_HASH_THREADS", "-1"),
        ("PASSWORD_HASH_QUEUE", "lots"),
    ],
)
def test_a_bad_password_hashing_setting_names_it(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value).startswith(f"{variable}=")
