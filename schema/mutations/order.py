from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.types import Order


@strawberry.type
class OrderMutations:
    @strawberry.mutation(
        extensions=allow(Permission.Owner),
        description=(
            "Adds a quantity of a product variant to the cart of this request's session, creating the cart (an "
            "active order) when it has none; a variant already in the cart has its quantity increased. Without "
            "a session, a guest session is created first and its token sent as for createAnonymousSession. "
            "Returns the whole order. Anyone may call."
        ),
    )
    async def add_item_to_order(
        self,
        info: Info,
        product_variant_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The shop's id of the product variant, 1 to 64 characters; not checked."),
        ],
        quantity: Annotated[
            int,
            strawberry.argument(
                description="How many to add, from 1; a line holds at most 1,000,000 (BAD_USER_INPUT)."
            ),
        ],
    ) -> Order:
        context = info.context
        session = await context.ensure_session()
        order, context.session = await context.services.orders.add_item_to_order(
            session, str(product_variant_id), quantity
        )
        return Order.from_domain(order)
