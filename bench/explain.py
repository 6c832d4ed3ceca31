"""Query plans of the session queries on PostgreSQL with a million sessions.

    .venv/bin/python bench/explain.py [--sessions 1000000] [--output bench/EXPLAIN.md]

Creates a fresh, uniquely named PostgreSQL database (next to TEST_DATABASE_URL
[postgres://postgres@127.0.0.1:5432/postgres]), applies our migrations, fills it with generate_series
(mostly anonymous sessions, some authenticated with users and roles, some holding an order, some
expired, some idle), runs ANALYZE, then prints EXPLAIN (ANALYZE, BUFFERS) of:

  lookup          the hot lookup of server/services/stored_session.py, by token_hash
  clean-expired   the clean job's delete of an expired batch (the SQL Tortoise generates for it)
  clean-idle      the clean job's delete of an idle-anonymous batch
  by-user         the delete of a user's sessions (deleteSessionsByUser, password changes, deleteUser)
  by-order        the delete of an order's sessions (deleteSessionsByActiveOrderId, the login merge)

and writes them with the row counts to bench/EXPLAIN.md. Every query must reach `sessions` through
an index; the exit status is 1 when one scans it sequentially. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import asyncpg  # noqa: E402
from tortoise import Tortoise  # noqa: E402

from models import Session  # noqa: E402
from server.database import close_database, open_database  # noqa: E402
from server.services.session_deletes import clean_set, deletion, expired_sessions, idle_anonymous_sessions  # noqa: E402
from server.services.stored_session import lookup_statement  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BATCH_SIZE = 1000  # the clean job's default batch size
PLAN_MODES = ("force_custom_plan", "force_generic_plan")
#: Tables large enough that a sequential scan of them would be a problem.
LARGE_TABLES = ("sessions", "users", "orders", "user_roles")

FILL = """
-- 5 channels, 20 roles on one or two channels each, 1 user per 10 sessions with one or two roles each,
-- and 14 orders per 100 sessions (the first 40% belong to users, the rest are guest carts).
INSERT INTO channels (created_at, updated_at, code, token, is_default)
SELECT now(), now(), 'channel-' || n, md5('channel' || n), n = 1 FROM generate_series(1, 5) AS n;
INSERT INTO roles (created_at, updated_at, code, description, permissions)
SELECT now(), now(), 'role-' || n, '',
       (CASE WHEN n = 1 THEN '["SuperAdmin"]' ELSE '["ReadOrder","UpdateOrder","ReadSession"]' END)::jsonb
FROM generate_series(1, 20) AS n;
INSERT INTO role_channels (roles_id, channel_id)
SELECT r.id, c.id FROM roles r JOIN channels c ON c.is_default OR c.id = 2 + r.id % 4;
INSERT INTO users (created_at, updated_at, identifier, password_hash, verified)
SELECT now(), now(), 'user-' || n || '@example.com', NULL, true FROM generate_series(1, {users}) AS n;
INSERT INTO user_roles (users_id, role_id)
SELECT u.id, 2 + u.id % 19 FROM users u
UNION ALL SELECT u.id, 2 + (u.id + 7) % 19 FROM users u WHERE u.id % 3 = 0;
INSERT INTO orders (created_at, updated_at, code, active, user_id)
SELECT now(), now(), 'ORDER-' || n, n % 10 <> 0, CASE WHEN n <= {orders} * 4 / 10 THEN 1 + n % {users} END
FROM generate_series(1, {orders}) AS n;
-- Sessions, by n % 100: 0-2 expired; 3-9 idle for 8 to 57 days, of which 8-9 hold an abandoned cart;
-- 8-21 hold an order; every fifth is a user's (about two per user), the others are guests; the rest
-- were used within the last 7 days.
-- Every session lasts a year from its last use (sliding expiry); token digests are SHA-256 like ours.
INSERT INTO sessions (created_at, updated_at, token_hash, type, expires, last_active_at, invalidated,
                      authentication_strategy, user_id, active_order_id, active_channel_id)
SELECT s.last_active_at - interval '30 days', s.last_active_at, encode(sha256(('session-' || n)::bytea), 'hex'),
       CASE WHEN n % 5 = 0 THEN 'authenticated' ELSE 'anonymous' END,
       s.last_active_at + interval '1 year', s.last_active_at, false,
       CASE WHEN n % 5 = 0 THEN 'native' END,
       CASE WHEN n % 5 = 0 THEN 1 + (n / 5) % {users} END,
       CASE WHEN n % 100 BETWEEN 8 AND 21 THEN 1 + (n / 100 * 14 + n % 100 - 8) % {orders} END,
       CASE WHEN n % 10 = 9 THEN 2 ELSE 1 END
FROM generate_series(1, {sessions}) AS n,
LATERAL (SELECT now() - CASE
    WHEN n % 100 < 3 THEN interval '1 year' + (n % 720) * interval '1 hour'
    WHEN n % 100 < 10 THEN interval '8 days' + (n % 50) * interval '1 day'
    ELSE (n % 10080) * interval '1 minute' END AS last_active_at) AS s;
"""

COUNTS = {
    "sessions": "SELECT count(*) FROM sessions",
    "anonymous": "SELECT count(*) FROM sessions WHERE type = 'anonymous'",
    "authenticated": "SELECT count(*) FROM sessions WHERE type = 'authenticated'",
    "expired": "SELECT count(*) FROM sessions WHERE expires <= now()",
    "idle anonymous, no order, unexpired": (
        "SELECT count(*) FROM sessions WHERE type = 'anonymous' AND active_order_id IS NULL"
        " AND last_active_at < now() - interval '7 days' AND expires > now()"
    ),
    "idle anonymous holding an order (kept)": (
        "SELECT count(*) FROM sessions WHERE type = 'anonymous' AND active_order_id IS NOT NULL"
        " AND last_active_at < now() - interval '7 days' AND expires > now()"
    ),
    "holding an order": "SELECT count(*) FROM sessions WHERE active_order_id IS NOT NULL",
    "users": "SELECT count(*) FROM users",
    "user_roles": "SELECT count(*) FROM user_roles",
    "roles": "SELECT count(*) FROM roles",
    "channels": "SELECT count(*) FROM channels",
    "orders": "SELECT count(*) FROM orders",
}


NOTES = (
    "Notes:",
    "",
    "- The clean job's two batch selects are ordered (`expires`, `last_active_at`). Without an order they",
    "  use the index only in a custom plan: the generic plan PostgreSQL may switch to after five runs of the",
    "  prepared statement estimates a third of the table for `expires <= $1` and scans `sessions`",
    "  sequentially (measured: `Seq Scan on sessions`, `Rows Removed by Filter` in the tens of thousands).",
    "- Each batch is deleted by one statement, `id = ANY(ARRAY(<locked batch select>))`: the select runs once",
    "  (`InitPlan`) and the rows are deleted through `sessions_pkey`. With `id IN (<select>)` instead, the",
    "  generic plan expects that third of the table and hash-joins the batch with a `Seq Scan on sessions`",
    "  (measured with a batch of 1,000: 337 ms, against 9 ms).",
    "- Every delete returns the deleted rows' `token_hash` (RETURNING): no statement lists digests or ids,",
    "  so its parameters stay few whatever the number of rows (asyncpg allows at most 32,767).",
    "- The idle select walks the (type, last_active_at, active_order_id) index: sessions holding an order",
    "  (abandoned guest carts, kept until they expire) are skipped inside the index, not by reading rows.",
    "  Its `Rows Removed by Filter` are expired guest sessions, which sort first by `last_active_at`. A",
    "  clean run selects the expired batch first and only asks for idle sessions once fewer than a batch",
    "  of expired ones are left, so in a real run it skips at most one batch of them.",
    "- `LockRows` and the `Limit` above it are the FOR UPDATE SKIP LOCKED of the clean job. Times vary from",
    "  run to run; the plan shapes and index names are what this page checks.",
)


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def _queries(connection: asyncpg.Connection) -> list[tuple[str, str, str, list[Any]]]:
    """(name, description, sql, params) for every query to explain, as the service builds them."""
    db = Tortoise.get_connection("default")
    now = datetime.now(UTC)
    token_hash = await connection.fetchval(
        "SELECT token_hash FROM sessions WHERE type = 'authenticated' AND expires > now()"
        " ORDER BY id LIMIT 1 OFFSET 777"
    )
    user_id = await connection.fetchval("SELECT user_id FROM sessions WHERE token_hash = $1", token_hash)
    order_id = await connection.fetchval(
        "SELECT active_order_id FROM sessions WHERE active_order_id IS NOT NULL ORDER BY id LIMIT 1 OFFSET 777"
    )
    lookup = lookup_statement("postgres")
    expired = deletion(clean_set(expired_sessions(now), db, BATCH_SIZE), db)
    idle = deletion(clean_set(idle_anonymous_sessions(now), db, BATCH_SIZE), db)
    # SessionService._delete_where(user_id=...) / (active_order_id=...), delete_user_sessions_in, the login merge.
    by_user = deletion(Session.filter(user_id=user_id), db)
    by_order = deletion(Session.filter(active_order_id=order_id), db)
    return [
        ("lookup", "hot lookup by token_hash (stored_session.py), an authenticated session", lookup, [token_hash]),
        ("clean-expired", f"clean job: expired batch of {BATCH_SIZE}", *expired),
        ("clean-idle", f"clean job: idle anonymous batch of {BATCH_SIZE}", *idle),
        ("by-user", "deleteSessionsByUser, password changes, deleteUser: the user's sessions", *by_user),
        ("by-order", "deleteSessionsByActiveOrderId, the login merge: the order's sessions", *by_order),
    ]


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


async def _explain(connection: asyncpg.Connection, sql: str, params: list[Any], mode: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of `sql` as a prepared statement, as asyncpg runs it, under a plan cache mode.

    The first executions of a prepared statement get a custom plan (for its parameter values); after
    five, PostgreSQL may switch to a generic plan. Both must use the indexes. Run in a transaction
    that is rolled back: EXPLAIN ANALYZE really executes, and FOR UPDATE really locks.
    """
    await connection.execute(f"PREPARE explained AS {sql}")
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
            arguments = ", ".join(_literal(value) for value in params)
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE explained({arguments})")
        finally:
            await transaction.rollback()
    finally:
        await connection.execute("DEALLOCATE explained")
        # Clears what the rolled-back row locks left on the pages, which slowed the next run's LockRows.
        await connection.execute("VACUUM sessions")
    return "\n".join(row[0] for row in rows)


def _sequential_scans(plan: str) -> list[str]:
    return [table for table in LARGE_TABLES if re.search(rf"Seq Scan on {table}\b", plan)]


async def run(sessions: int, output: Path, keep: bool = False) -> int:
    admin = await asyncpg.connect(_dsn(TEST_DATABASE_URL), timeout=10)
    name = f"explain_{secrets.token_hex(6)}"
    url = urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await open_database(url)
        connection = await asyncpg.connect(_dsn(url), timeout=10)
        try:
            started = time.monotonic()
            users, orders = max(sessions // 10, 1), max(sessions * 14 // 100, 1)
            await connection.execute(FILL.format(sessions=sessions, users=users, orders=orders))
            await connection.execute("VACUUM ANALYZE")
            print(f"filled and analysed in {time.monotonic() - started:.1f} s", file=sys.stderr)
            counts = {label: await connection.fetchval(sql) for label, sql in COUNTS.items()}
            version = await connection.fetchval("SHOW server_version")
            sections, failures = [], []
            for key, description, sql, params in await _queries(connection):
                plans = [await _explain(connection, sql, params, mode) for mode in PLAN_MODES]
                for mode, plan in zip(PLAN_MODES, plans, strict=True):
                    if scans := _sequential_scans(plan):
                        failures.append(f"{key} ({mode}): sequential scan on {', '.join(scans)}")
                plan = "\n\n".join(f"-- {mode}\n{plan}" for mode, plan in zip(PLAN_MODES, plans, strict=True))
                sections.append((key, description, sql, params, plan))
                print(f"== {key}: {description}\n{sql}\n{plan}\n")
        finally:
            await connection.close()
            await close_database()
    finally:
        if keep:
            print(f"kept the database {url}", file=sys.stderr)
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    output.write_text(_markdown(sessions, version, counts, sections, failures))
    print(f"wrote {output}", file=sys.stderr)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


def _markdown(
    sessions: int,
    version: str,
    counts: dict[str, int],
    sections: list[tuple[str, str, str, list[Any], str]],
    failures: list[str],
) -> str:
    command = ".venv/bin/python bench/explain.py" + ("" if sessions == 1_000_000 else f" --sessions {sessions}")
    lines = [
        "# Query plans of the session queries (PostgreSQL)",
        "",
        f"Generated by `{command}` on PostgreSQL {version}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC:",
        "a fresh database with our migrations, filled with generate_series, `VACUUM ANALYZE`d, then",
        "`EXPLAIN (ANALYZE, BUFFERS)` of each query exactly as the service sends it, run as a prepared",
        "statement (as asyncpg does) both with a custom plan (the first executions) and a generic plan",
        "(what PostgreSQL may switch to after five), in a transaction that is rolled back.",
        "",
        "| rows | count |",
        "| --- | ---: |",
        *(f"| {label} | {count:,} |" for label, count in counts.items()),
        "",
        "Result: " + ("; ".join(failures) if failures else "every query reaches `sessions` through an index."),
        "",
        *NOTES,
        "",
    ]
    for key, description, sql, params, plan in sections:
        shown = ", ".join(_literal(p if not isinstance(p, str) or len(p) < 20 else p[:16] + "…") for p in params)
        lines += [
            f"## {key}: {description}",
            "",
            "```sql",
            sql,
            "```",
            "",
            f"Parameters: `{shown}`",
            "",
            "```",
            plan,
            "```",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "EXPLAIN.md")
    parser.add_argument("--keep", action="store_true", help="keep the database (printed) to investigate")
    args = parser.parse_args()
    return asyncio.run(run(args.sessions, args.output, args.keep))


if __name__ == "__main__":
    sys.exit(main())
