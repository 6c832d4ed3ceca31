"""A login's transaction: its locks and credential check, and the merge of the guest's cart into the
user's active order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from models import Order, OrderLine, Session, User
from server.database import parameters
from server.services.errors import StaleCredentialsError

#: How long a guest session ended by a login is remembered as ended (invalidated, then cleaned as
#: expired): a request still carrying its token then gets FORBIDDEN / SESSION_ENDED instead of a new
#: guest cart whose cookie would replace the login's. The race it covers lasts a round trip or two.
MERGED_SESSION_GRACE = timedelta(minutes=2)

# Every login runs these two; written by hand, as building them through Tortoise cost the event loop
# more than running them. FOR UPDATE on PostgreSQL (SQLite's writers hold the whole file).
_LOCK_USER = "SELECT password_hash, verified FROM users WHERE id = {}"
_LOCK_ACTIVE_ORDER = "SELECT id FROM orders WHERE user_id = {} AND active ORDER BY id DESC LIMIT 1"


@dataclass(frozen=True, slots=True)
class MergeResult:
    active_order_id: int | None
    #: token digests of the sessions that held the guest order and were ended
    deleted_session_hashes: list[str] = field(default_factory=list)
    #: how the guest order reached the user, the reason of the ORDER_MERGED event: "merged" (folded into
    #: the user's active order) or "adopted" (it became the user's active order); None: no guest order
    merged: str | None = None


async def lock_for_login(user: User, guest_order_id: int | None, connection: BaseDBAsyncClient) -> None:
    """Lock what a login changes, in the one order every writer takes (user, then sessions, then orders,
    as addItemToOrder and a password reset do), and check the credentials the caller proved against
    `user` still hold: StaleCredentialsError when the user is gone or their password or verification
    changed since, so a credential change ends every login that proved the old credential."""
    locked = await _locked_rows(connection, _LOCK_USER, user.id)
    if not locked or locked[0][0] != user.password_hash or bool(locked[0][1]) != user.verified:
        raise StaleCredentialsError()
    if guest_order_id is not None:  # the sessions holding the guest order, which the merge ends
        await Session.filter(active_order_id=guest_order_id).using_db(connection).select_for_update().only("id")


async def _locked_rows(connection: BaseDBAsyncClient, template: str, row_id: int) -> list[Any]:
    dialect = connection.capabilities.dialect
    statement = template.format(*parameters(dialect, 1)) + (" FOR UPDATE" if dialect == "postgres" else "")
    return list((await connection.execute_query(statement, [row_id]))[1])


async def merge_guest_order(
    guest_order_id: int | None, user_id: int, connection: BaseDBAsyncClient, now: datetime
) -> MergeResult:
    """Fold the guest order into the user's active order (guest quantity wins per variant).

    With no active order the guest order becomes the user's. Either way the sessions holding the
    guest order are ended: invalidated, and expiring after MERGED_SESSION_GRACE. The caller has
    locked the user and those sessions; the orders are locked here (user's first, then the guest's),
    so that concurrent logins with one cart merge it exactly once.
    """
    active = await _locked_rows(connection, _LOCK_ACTIVE_ORDER, user_id)
    existing_id: int | None = active[0][0] if active else None
    guest = None
    if guest_order_id is not None:
        guest = (
            await Order.filter(id=guest_order_id, user_id__isnull=True, active=True)
            .using_db(connection)
            .select_for_update()
            .first()
        )
    if guest is None:
        return MergeResult(existing_id)

    holders = Session.filter(active_order_id=guest.id).using_db(connection)
    hashes = [str(value) for value in await holders.values_list("token_hash", flat=True)]  # a guest's few
    await holders.update(invalidated=True, active_order_id=None, expires=now + MERGED_SESSION_GRACE)
    if existing_id is None:
        await Order.filter(id=guest.id).using_db(connection).update(user_id=user_id, created_by_session_id=None)
        return MergeResult(guest.id, hashes, merged="adopted")

    existing_lines = {
        line.product_variant_id: line for line in await OrderLine.filter(order_id=existing_id).using_db(connection)
    }
    for line in await OrderLine.filter(order_id=guest.id).using_db(connection):
        match = existing_lines.get(line.product_variant_id)
        if match is None:
            await OrderLine.create(
                order_id=existing_id,
                product_variant_id=line.product_variant_id,
                quantity=line.quantity,
                using_db=connection,
            )
        elif match.quantity != line.quantity:
            await OrderLine.filter(id=match.id).using_db(connection).update(quantity=line.quantity)
    await Order.filter(id=guest.id).using_db(connection).delete()
    return MergeResult(existing_id, hashes, merged="merged")
