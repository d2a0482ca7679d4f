"""The retail policy (tau2-bench's retail policy.md) as checks on one gold write before it runs.

``check_policy(state, action, intent, done)`` returns the first broken rule's reason, or None.
Every reason is a constant in ``REASONS``; each has a test that breaks it on purpose. The kernel
refuses many of these calls too, but not all: it lets a 'pending (item modified)' order's address
or payment change, an exchange keep the same item, a return or change list no items, and acts for
whichever user owns the order. The policy reason says what is wrong in the policy's own terms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from engine.tasks.model import Action, Intent
from envs.kernel import State
from envs.retail import DOMAIN
from envs.retail.schema import GiftCard, Order, User

__all__ = ["REASONS", "check_policy"]

NOT_AUTHENTICATED = "policy: user not authenticated"
OTHER_USER = "policy: record of another user"
STATUS_UNCHECKED = "policy: order status not checked"
CANCEL_NOT_PENDING = "policy: cancel needs a pending order"
CANCEL_REASON = "policy: cancel reason not allowed"
MODIFY_NOT_PENDING = "policy: modify needs a pending order"
CHANGED_TWICE = "policy: order items already changed"
NO_ITEMS = "policy: no items"
LENGTHS = "policy: item lists differ in length"
ITEM_NOT_IN_ORDER = "policy: item not in order"
OTHER_PRODUCT = "policy: new item of another product"
SAME_ITEM = "policy: new item same as old"
UNAVAILABLE = "policy: new item not available"
METHOD_NOT_OWNED = "policy: payment method not the user's"
GIFT_CARD_BALANCE = "policy: gift card balance too low"
SPLIT_PAYMENT = "policy: order has more than one payment"
SAME_METHOD = "policy: payment method unchanged"
RETURN_NOT_DELIVERED = "policy: return needs a delivered order"
REFUND_METHOD = "policy: refund must go to the original method or a gift card"
EXCHANGE_NOT_DELIVERED = "policy: exchange needs a delivered order"

REASONS = (
    NOT_AUTHENTICATED,
    OTHER_USER,
    STATUS_UNCHECKED,
    CANCEL_NOT_PENDING,
    CANCEL_REASON,
    MODIFY_NOT_PENDING,
    CHANGED_TWICE,
    NO_ITEMS,
    LENGTHS,
    ITEM_NOT_IN_ORDER,
    OTHER_PRODUCT,
    SAME_ITEM,
    UNAVAILABLE,
    METHOD_NOT_OWNED,
    GIFT_CARD_BALANCE,
    SPLIT_PAYMENT,
    SAME_METHOD,
    RETURN_NOT_DELIVERED,
    REFUND_METHOD,
    EXCHANGE_NOT_DELIVERED,
)
CANCEL_REASONS = frozenset({"no longer needed", "ordered by mistake"})
ITEM_TOOLS = frozenset({"modify_pending_order_items", "exchange_delivered_order_items"})
FIND_TOOLS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})


def _authenticated(state: State, intent: Intent) -> str | None:
    """The user id the intent's authentication read finds at the start of the conversation."""
    initial = state.base.new_state()
    for r in intent.reads:
        if r.name in FIND_TOOLS:
            result = DOMAIN.call(initial, r.name, r.arguments)
            if not result.error:
                return result.output
    return None


def _checked(intent: Intent, order_id: str) -> bool:
    return any(r.name == "get_order_details" and r.arguments.get("order_id") == order_id for r in intent.reads)


def _items(state: State, order: Order, args: dict[str, Any], user: User) -> str | None:
    """Rules for modify-items and exchange: same product, another option, available, affordable."""
    old, new = args.get("item_ids", []), args.get("new_item_ids", [])
    if not old:
        return NO_ITEMS
    if len(old) != len(new):
        return LENGTHS
    have = Counter(i.item_id for i in order.items)
    if any(n > have[i] for i, n in Counter(old).items()):
        return ITEM_NOT_IN_ORDER
    by_id = {i.item_id: i for i in order.items}
    diff = 0.0
    for old_id, new_id in zip(old, new, strict=True):
        item = by_id[old_id]
        variant = state.get("products", item.product_id).variants.get(new_id)
        if variant is None:
            return OTHER_PRODUCT
        if new_id == old_id:
            return SAME_ITEM
        if not variant.available:
            return UNAVAILABLE
        diff += variant.price - item.price
    method = user.payment_methods.get(args.get("payment_method_id", ""))
    if method is None:
        return METHOD_NOT_OWNED
    if isinstance(method, GiftCard) and method.balance < round(diff, 2):
        return GIFT_CARD_BALANCE
    return None


def _payment(order: Order, args: dict[str, Any], user: User) -> str | None:
    """Rules for changing a pending order's payment: one payment, another method, enough balance."""
    history = order.payment_history
    if len(history) != 1 or history[0].transaction_type != "payment":
        return SPLIT_PAYMENT
    method_id = args.get("payment_method_id", "")
    method = user.payment_methods.get(method_id)
    if method is None:
        return METHOD_NOT_OWNED
    if method_id == history[0].payment_method_id:
        return SAME_METHOD
    if isinstance(method, GiftCard) and method.balance < history[0].amount:
        return GIFT_CARD_BALANCE
    return None


def _return(order: Order, args: dict[str, Any], user: User) -> str | None:
    """Rules for a return: items in the order, refund to the original method or a gift card."""
    wanted = args.get("item_ids", [])
    if not wanted:
        return NO_ITEMS
    have = Counter(i.item_id for i in order.items)
    if any(n > have[i] for i, n in Counter(wanted).items()):
        return ITEM_NOT_IN_ORDER
    method_id = args.get("payment_method_id", "")
    method = user.payment_methods.get(method_id)
    if method is None:
        return METHOD_NOT_OWNED
    if not isinstance(method, GiftCard) and method_id != order.payment_history[0].payment_method_id:
        return REFUND_METHOD
    return None


def check_policy(state: State, action: Action, intent: Intent, done: Sequence[Action]) -> str | None:
    """The reason ``action`` (about to run on ``state``) breaks the retail policy, or None.

    Steps: 1) the user is authenticated by a lookup in the intent's reads; 2) the record belongs to
    that user; 3) the order's status was read and allows the action; 4) the action's own rules.
    """
    name, args = action.name, action.arguments
    # 1) authentication
    user_id = _authenticated(state, intent)
    if user_id is None:
        return NOT_AUTHENTICATED
    user: User = state.get("users", user_id)
    if name == "modify_user_address":
        return None if args.get("user_id") == user_id else OTHER_USER
    # 2) ownership
    order_id = args.get("order_id", "")
    order: Order | None = state.get("orders", order_id)
    if order is None or order.user_id != user_id:
        return OTHER_USER
    # 3) status, read before acting
    if not _checked(intent, order_id):
        return STATUS_UNCHECKED
    if name in ITEM_TOOLS and any(a.name in ITEM_TOOLS and a.arguments.get("order_id") == order_id for a in done):
        return CHANGED_TWICE
    if name == "cancel_pending_order":
        if order.status != "pending":
            return CANCEL_NOT_PENDING
        return None if args.get("reason") in CANCEL_REASONS else CANCEL_REASON
    if name.startswith("modify_pending_order_") and order.status != "pending":
        return MODIFY_NOT_PENDING
    if name == "return_delivered_order_items" and order.status != "delivered":
        return RETURN_NOT_DELIVERED
    if name == "exchange_delivered_order_items" and order.status != "delivered":
        return EXCHANGE_NOT_DELIVERED
    # 4) the action's own rules
    if name in ITEM_TOOLS:
        return _items(state, order, args, user)
    if name == "modify_pending_order_payment":
        return _payment(order, args, user)
    if name == "return_delivered_order_items":
        return _return(order, args, user)
    return None
