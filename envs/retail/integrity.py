"""Consistency checks of a retail DB: ids, order items against the catalogue, payments, statuses.

``check(db)`` returns one line per problem (empty when the DB is consistent).
"""

from __future__ import annotations

import re
from collections import Counter

from envs.integrity import check_payment_key, check_user_links
from envs.retail.schema import GiftCard, Order, RetailDB

__all__ = ["check"]

_ORDER_ID = re.compile(r"^#W\d{7}$")
_TEN_DIGITS = re.compile(r"^\d{10}$")
_TRACKING = re.compile(r"^\d{12}$")
_PAYMENT_ID = re.compile(r"^(credit_card|gift_card|paypal)_\d{7}$")
_SHIPPED = ("processed", "delivered", "exchange requested", "return requested")
_REASONS = ("no longer needed", "ordered by mistake")


def check(db: RetailDB) -> list[str]:
    """Every inconsistency found in ``db``, one line each; empty when there is none."""
    problems: list[str] = []
    _check_products(db, problems)
    _check_users(db, problems)
    tracking: dict[str, str] = {}
    for oid, order in db.orders.items():
        _check_order(db, oid, order, tracking, problems)
    return problems


def _check_products(db: RetailDB, problems: list[str]) -> None:
    owner: dict[str, str] = {}
    names: dict[str, str] = {}
    for pid, product in db.products.items():
        where = f"product {pid}"
        if product.product_id != pid or not _TEN_DIGITS.match(pid):
            problems.append(f"{where}: key and product_id {product.product_id!r} differ or are malformed")
        seen = names.setdefault(product.name, pid)
        if seen != pid:
            problems.append(f"{where}: name {product.name!r} also used by product {seen}")
        if not product.variants:
            problems.append(f"{where}: no variants")
        if pid in owner:
            problems.append(f"{where}: id is also an item id of product {owner[pid]}")
        owner.setdefault(pid, pid)
        options = set()
        for iid, variant in product.variants.items():
            if variant.item_id != iid or not _TEN_DIGITS.match(iid):
                problems.append(f"{where}: variant key {iid} and item_id {variant.item_id!r} differ or are malformed")
            other = owner.setdefault(iid, pid)
            if other != pid or (iid in db.products and iid != pid):
                problems.append(f"{where}: item id {iid} is also used by product {other}")
            if not variant.price > 0:
                problems.append(f"{where}: item {iid} price {variant.price}")
            key = tuple(sorted(variant.options.items()))
            if key in options:
                problems.append(f"{where}: item {iid} repeats the options of another variant")
            options.add(key)


def _check_users(db: RetailDB, problems: list[str]) -> None:
    emails: dict[str, str] = {}
    name_zip: dict[tuple[str, str, str], str] = {}
    for uid, user in db.users.items():
        where = f"user {uid}"
        if user.user_id != uid:
            problems.append(f"{where}: key and user_id {user.user_id!r} differ")
        seen = emails.setdefault(user.email.lower(), uid)
        if seen != uid:
            problems.append(f"{where}: email {user.email} also belongs to {seen}")
        key = (user.name.first_name.lower(), user.name.last_name.lower(), user.address.zip)
        seen = name_zip.setdefault(key, uid)
        if seen != uid:
            problems.append(f"{where}: name and zip {user.address.zip} also match {seen}")
        check_user_links(problems, where, uid, user.orders, db.orders, "order")
        for pid, method in user.payment_methods.items():
            check_payment_key(problems, where, pid, method, _PAYMENT_ID)
            if isinstance(method, GiftCard) and method.balance < 0:
                problems.append(f"{where}: {pid} has negative balance {method.balance}")


def _check_order(
    db: RetailDB, oid: str, order: Order, tracking: dict[str, str], problems: list[str]
) -> None:
    where = f"order {oid}"
    if order.order_id != oid or not _ORDER_ID.match(oid):
        problems.append(f"{where}: key and order_id {order.order_id!r} differ or are malformed")
    user = db.users.get(order.user_id)
    if user is None:
        problems.append(f"{where}: user {order.user_id} does not exist")
    elif oid not in user.orders:
        problems.append(f"{where}: missing from the orders of user {order.user_id}")
    if not order.items:
        problems.append(f"{where}: no items")
    for item in order.items:
        product = db.products.get(item.product_id)
        variant = None if product is None else product.variants.get(item.item_id)
        if variant is None:
            problems.append(f"{where}: item {item.item_id} of product {item.product_id} does not exist")
            continue
        if item.name != product.name or item.price != variant.price or item.options != variant.options:
            problems.append(f"{where}: item {item.item_id} differs from its catalogue entry")
    # payments: what was paid less what was refunded
    paid = sum(p.amount for p in order.payment_history if p.transaction_type == "payment")
    refunded = sum(p.amount for p in order.payment_history if p.transaction_type == "refund")
    total = round(sum(i.price for i in order.items), 2)
    net = round(paid - refunded, 2)
    want = 0.0 if order.status == "cancelled" else total
    if net != want:
        problems.append(f"{where}: payments net {net}, want {want} ({order.status})")
    for p in order.payment_history:
        if user is not None and p.payment_method_id not in user.payment_methods:
            problems.append(f"{where}: payment method {p.payment_method_id} not in the user's profile")
    # fulfillments by status
    shipped = Counter(i for f in order.fulfillments for i in f.item_ids)
    if order.status in _SHIPPED and shipped != Counter(i.item_id for i in order.items):
        problems.append(f"{where}: {order.status} but fulfillments do not cover its items exactly")
    if order.status.startswith("pending") or order.status == "cancelled":
        if order.fulfillments:
            problems.append(f"{where}: {order.status} but has fulfillments")
    if order.status == "cancelled" and order.cancel_reason not in _REASONS:
        problems.append(f"{where}: cancelled without a valid reason")
    if order.status == "pending" and len(order.payment_history) != 1:
        problems.append(f"{where}: pending with {len(order.payment_history)} payment entries")
    for f in order.fulfillments:
        for tid in f.tracking_id:
            if not _TRACKING.match(tid):
                problems.append(f"{where}: malformed tracking id {tid!r}")
            seen = tracking.setdefault(tid, oid)
            if seen != oid:
                problems.append(f"{where}: tracking id {tid} also used by order {seen}")
