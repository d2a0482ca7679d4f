"""Seeded synthetic retail DB at any scale: a product catalogue with variants, users and orders.

Everything is drawn from one ``random.Random(seed)``, so the same ``(users, seed)`` gives the
same DB, byte for byte once encoded. Sizes follow tau2-bench's ratios (2 orders per user);
the catalogue grows slowly with the user count (50 product types at 500 users, 126 at 50,000).
Order items copy their variant's name, ids, price and options; each order's payments add up to
its items; statuses come in tau2-like shares (pending 42%, delivered 37%, processed 10%,
cancelled 10%).
"""

from __future__ import annotations

import math
import random

import msgspec

from envs.retail.catalog import CATALOG, ProductType
from envs.retail.schema import (
    CreditCard,
    GiftCard,
    Order,
    OrderFulfillment,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    Paypal,
    Product,
    RetailDB,
    User,
    UserAddress,
    UserName,
    Variant,
)
from envs.synth import IdPool, Person, address_fields, cumulative, gc_paused, user_handles

__all__ = ["generate_db"]

_STATUSES = ("pending", "delivered", "processed", "cancelled")
_STATUS_CUM = cumulative((42, 37, 10, 10))
_ORDERS_PER_USER = cumulative((62, 133, 141, 104, 37, 17, 4, 1, 1))  # 0..8 orders, mean ~2
_CANCEL_REASONS = ("no longer needed", "ordered by mistake")


# -- 1) the catalogue ----------------------------------------------------------------------------
def _product(rng: random.Random, kind: ProductType, ids: IdPool) -> Product:
    """One product type with 5 to 20 distinct variants (fewer when it has fewer combinations)."""
    name, typical, dims = kind
    sizes = [len(values) for _, values in dims]
    total = math.prod(sizes)
    level = typical * rng.uniform(0.85, 1.2)
    # each option value moves the price a little; later values in a list cost a bit more
    factor = {
        (option, value): 1.0 + 0.05 * i / len(values) + rng.uniform(-0.04, 0.06)
        for option, values in dims
        for i, value in enumerate(values)
    }
    variants: dict[str, Variant] = {}
    for code in rng.sample(range(total), min(total, rng.randint(5, 20))):
        options: dict[str, str] = {}
        price = level * rng.uniform(0.98, 1.02)
        for (option, values), size in zip(dims, sizes, strict=True):
            code, pick = divmod(code, size)
            options[option] = values[pick]
            price *= factor[(option, values[pick])]
        item_id = ids.digits("", 10)
        variants[item_id] = Variant(
            item_id=item_id, options=options, available=rng.random() < 0.7, price=round(price, 2)
        )
    shelf = list(variants.values())
    for variant in shelf[:2]:  # at least two in stock, so modify/exchange has somewhere to go
        variant.available = True
    return Product(name=name, product_id=ids.digits("", 10), variants=variants)


# -- 2) users ------------------------------------------------------------------------------------
def _payment_methods(rng: random.Random, ids: IdPool) -> dict[str, PaymentMethod]:
    count = rng.choices((1, 2, 3, 4), weights=(67, 27, 5, 1))[0]
    kinds: list[str] = []
    for _ in range(count):
        kind = rng.choice(("gift_card", "paypal", "credit_card"))
        kinds.append("credit_card" if kind in kinds and kind != "credit_card" else kind)
    methods: dict[str, PaymentMethod] = {}
    for kind in kinds:
        pid = ids.digits(f"{kind}_", 7)
        if kind == "credit_card":
            brand = rng.choices(("visa", "mastercard", "amex", "discover"), weights=(45, 35, 12, 8))[0]
            methods[pid] = CreditCard(id=pid, brand=brand, last_four=f"{rng.randrange(10000):04d}")
        elif kind == "gift_card":
            methods[pid] = GiftCard(id=pid, balance=float(rng.randint(0, 150)))
        else:
            methods[pid] = Paypal(id=pid)
    return methods


def _user(rng: random.Random, names: IdPool, payment_ids: IdPool) -> User:
    person = Person(rng)
    first, last = person.first.lower(), person.last.lower()
    user_id, email = user_handles(rng, names, first, last)
    fields = address_fields(rng)
    while not names.take(f"{first} {last} {fields['zip']}"):  # name + zip finds exactly one user
        fields["zip"] = f"{fields['zip'][:3]}{rng.randint(0, 99):02d}"
    return User(
        user_id=user_id,
        name=UserName(first_name=person.first, last_name=person.last),
        address=UserAddress(**fields),
        email=email,
        payment_methods=_payment_methods(rng, payment_ids),
        orders=[],
    )


# -- 3) orders -----------------------------------------------------------------------------------
def _order(
    rng: random.Random, user: User, order_id: str, products: list[Product], tracking: IdPool
) -> Order:
    items = []
    for _ in range(rng.randint(1, 5)):
        product = products[rng.randrange(len(products))]
        variants = list(product.variants.values())
        v = variants[rng.randrange(len(variants))]
        items.append(
            OrderItem(
                name=product.name,
                product_id=product.product_id,
                item_id=v.item_id,
                price=v.price,
                options=dict(v.options),
            )
        )
    status = rng.choices(_STATUSES, cum_weights=_STATUS_CUM)[0]
    if rng.random() < 0.8:
        address = msgspec.structs.replace(user.address)
    else:  # shipped somewhere else (an old address, a gift)
        address = UserAddress(**address_fields(rng))
    method = list(user.payment_methods)[rng.randrange(len(user.payment_methods))]
    amount = round(sum(i.price for i in items), 2)
    payments = [OrderPayment(transaction_type="payment", amount=amount, payment_method_id=method)]
    fulfillments: list[OrderFulfillment] = []
    if status in ("processed", "delivered"):
        ids = [i.item_id for i in items]
        cut = rng.randint(1, len(ids) - 1) if len(ids) > 1 and rng.random() < 0.1 else len(ids)
        for part in (ids[:cut], ids[cut:]):
            if part:
                fulfillments.append(OrderFulfillment(tracking_id=[tracking.digits("", 12)], item_ids=part))
    reason = None
    if status == "cancelled":
        payments.append(OrderPayment(transaction_type="refund", amount=amount, payment_method_id=method))
        reason = rng.choice(_CANCEL_REASONS)
    return Order(
        order_id=order_id,
        user_id=user.user_id,
        address=address,
        items=items,
        status=status,
        fulfillments=fulfillments,
        payment_history=payments,
        cancel_reason=reason,  # type: ignore[arg-type]
    )


# -- 4) the whole DB -----------------------------------------------------------------------------
def generate_db(users: int, seed: int) -> RetailDB:
    """A consistent retail DB with ``users`` users, ~2 orders each; deterministic in seed."""
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    with gc_paused():
        return _build(users, seed)


def _build(users: int, seed: int) -> RetailDB:
    rng = random.Random(seed)
    n_products = max(5, min(len(CATALOG), round(50 * (users / 500) ** 0.2)))
    catalog_ids = IdPool(rng)
    products = [_product(rng, CATALOG[k], catalog_ids) for k in rng.sample(range(len(CATALOG)), n_products)]

    names = IdPool(rng)
    payment_ids = IdPool(rng)
    user_list = [_user(rng, names, payment_ids) for _ in range(users)]

    order_ids = IdPool(rng)
    tracking = IdPool(rng)
    orders: list[Order] = []
    for user in user_list:
        for _ in range(rng.choices(range(len(_ORDERS_PER_USER)), cum_weights=_ORDERS_PER_USER)[0]):
            order = _order(rng, user, order_ids.digits("#W", 7), products, tracking)
            orders.append(order)
            user.orders.append(order.order_id)
    rng.shuffle(orders)
    return RetailDB(
        products={p.product_id: p for p in products},
        users={u.user_id: u for u in user_list},
        orders={o.order_id: o for o in orders},
    )
