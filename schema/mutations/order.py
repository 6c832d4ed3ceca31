from __future__ import annotations

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.types import Order


@strawberry.type
class OrderMutations:
    @strawberry.mutation(extensions=allow(Permission.Owner))
    async def add_item_to_order(self, info: Info, product_variant_id: strawberry.ID, quantity: int) -> Order:
        context = info.context
        session = await context.ensure_session()
        order, context.session = await context.services.orders.add_item_to_order(
            session, str(product_variant_id), quantity
        )
        return Order.from_domain(order)
