"""Orders just deep enough for carts: the active order of a session and its lines."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import Order, OrderLine, Session, User
from server.cached_session import CachedSession
from server.services.errors import EntityNotFoundError, ForbiddenError, SessionEndedError, UserInputError
from server.services.session import SessionService
from server.services.text import check_storable
from server.services.tokens import new_order_code

MAX_LINE_QUANTITY = 1_000_000
MAX_VARIANT_ID_LENGTH = 64


class OrderService:
    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions

    async def find_one(self, order_id: int) -> Order | None:
        return await Order.filter(id=order_id).prefetch_related("lines").first()

    async def get_active_order(self, session: CachedSession | None) -> Order | None:
        """The order the session holds, if it is still active."""
        if session is None or session.active_order_id is None:
            return None
        return await Order.filter(id=session.active_order_id, active=True).prefetch_related("lines").first()

    async def add_item_to_order(
        self, session: CachedSession, product_variant_id: str, quantity: int
    ) -> tuple[Order, CachedSession]:
        """Add `quantity` of the variant to the session's active order, creating that order when needed."""
        if not 0 < len(product_variant_id) <= MAX_VARIANT_ID_LENGTH:
            raise UserInputError(f"productVariantId must be 1 to {MAX_VARIANT_ID_LENGTH} characters")
        check_storable(product_variant_id, "productVariantId")
        if not 0 < quantity <= MAX_LINE_QUANTITY:
            raise UserInputError(f"quantity must be from 1 to {MAX_LINE_QUANTITY}")
        async with in_transaction() as connection:
            if session.user is not None:
                # Locks in one order everywhere (user, then sessions, then orders), as login and a
                # password reset take them: any other order can deadlock against those.
                await User.filter(id=session.user.id).using_db(connection).select_for_update().only("id")
            # Locking the session row serialises concurrent adds, so one session never creates two carts.
            stored = await Session.filter(token_hash=session.cache_key).using_db(connection).select_for_update().first()
            if stored is None:  # ended since the request began (logged out, or merged into a login)
                raise SessionEndedError()
            order = await self._active_order_for_update(stored, session, connection)
            if stored.active_order_id != order.id:  # type: ignore[attr-defined]
                # Record the cart on the locked row before the lock is released, or a concurrent add makes another.
                await Session.filter(id=stored.id).using_db(connection).update(active_order_id=order.id)
            line = (
                await OrderLine.filter(order_id=order.id, product_variant_id=product_variant_id)
                .using_db(connection)
                .first()
            )
            if line is None:
                await OrderLine.create(
                    order_id=order.id, product_variant_id=product_variant_id, quantity=quantity, using_db=connection
                )
            elif line.quantity + quantity > MAX_LINE_QUANTITY:
                raise UserInputError(f"a line may hold at most {MAX_LINE_QUANTITY} items")
            else:
                await OrderLine.filter(id=line.id).using_db(connection).update(quantity=F("quantity") + quantity)
        if session.active_order_id != order.id:
            session = await self._sessions.set_active_order(session, order)
        result = await self.find_one(order.id)
        assert result is not None
        return result, session

    async def set_active_order(self, session: CachedSession, order_id: int) -> CachedSession:
        """Make an order active for the session: the user's own, or a guest order this session created or holds."""
        order = await Order.filter(id=order_id).first()
        if order is None:
            raise EntityNotFoundError("Order", order_id)
        if not self._may_hold(session, order):
            raise ForbiddenError()
        if not order.active:
            raise UserInputError(f"Order '{order_id}' is no longer active")
        return await self._sessions.set_active_order(session, order)

    async def unset_active_order(self, session: CachedSession) -> CachedSession:
        return await self._sessions.unset_active_order(session)

    @staticmethod
    def _may_hold(session: CachedSession, order: Order) -> bool:
        if order.user_id is not None:  # type: ignore[attr-defined]
            return session.user is not None and session.user.id == order.user_id  # type: ignore[attr-defined]
        return order.created_by_session_id == session.id or session.active_order_id == order.id

    async def _active_order_for_update(
        self, stored: Session, session: CachedSession, connection: BaseDBAsyncClient
    ) -> Order:
        if stored.active_order_id is not None:  # type: ignore[attr-defined]
            # Locked: adds to one order through different sessions must not insert the same line twice.
            order = (
                await Order.filter(id=stored.active_order_id, active=True)  # type: ignore[attr-defined]
                .using_db(connection)
                .select_for_update()
                .first()
            )
            if order is not None:
                return order
        if session.user is not None:
            # The user's row, locked first by the caller, makes concurrent first adds from two of
            # their sessions share one cart.
            order = (
                await Order.filter(user_id=session.user.id, active=True)
                .using_db(connection)
                .order_by("-id")
                .select_for_update()
                .first()
            )
            if order is not None:
                return order
            return await Order.create(code=new_order_code(), user_id=session.user.id, using_db=connection)
        return await Order.create(code=new_order_code(), created_by_session_id=stored.id, using_db=connection)
