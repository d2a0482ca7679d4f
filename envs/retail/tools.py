"""The 16 retail tools, with tau2-bench's names, arguments, behaviour and error texts.

Each tool takes the conversation's ``State`` first, as ``state``; in the two address tools tau2's own
``state`` argument (the address's state, e.g. 'CA') has that name, and the ``State`` is ``current``.
"""

from __future__ import annotations

import json
from typing import Any

from envs.kernel import Index, State, ToolError, tool
from envs.kernel.common_tools import calculate, transfer_to_human_agents
from envs.retail.schema import (
    GiftCard,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    Product,
    User,
    UserAddress,
    Variant,
)

__all__ = ["TOOLS"]

CANCEL_REASONS = frozenset({"no longer needed", "ordered by mistake"})


# -- lookups ---------------------------------------------------------------------------------------
def _order(state: State, order_id: str) -> Order:
    order = state.get("orders", order_id)
    if order is None:
        raise ToolError("Order not found")
    return order


def _user(state: State, user_id: str) -> User:
    user = state.get("users", user_id)
    if user is None:
        raise ToolError("User not found")
    return user


def _product(state: State, product_id: str) -> Product:
    product = state.get("products", product_id)
    if product is None:
        raise ToolError("Product not found")
    return product


def _variant(state: State, product_id: str, item_id: str) -> Variant:
    variant = _product(state, product_id).variants.get(item_id)
    if variant is None:
        raise ToolError("Variant not found")
    return variant


def _payment_method(state: State, user_id: str, payment_method_id: str) -> PaymentMethod:
    method = _user(state, user_id).payment_methods.get(payment_method_id)
    if method is None:
        raise ToolError("Payment method not found")
    return method


def _adjust_gift_card(state: State, user_id: str, payment_method_id: str, delta: float) -> None:
    """Add ``delta`` to a gift card's balance, rounded to cents as tau2-bench does."""
    card = state.mut("users", user_id).payment_methods[payment_method_id]
    card.balance = round(card.balance + delta, 2)


def _check_counts(wanted: list[str], order: Order, message: str) -> None:
    """Every id in ``wanted`` must be in the order at least as many times as it is wanted."""
    have = [item.item_id for item in order.items]
    for item_id in wanted:
        if wanted.count(item_id) > have.count(item_id):
            raise ToolError(message.format(item_id=item_id))


def _price_difference(
    state: State, order: Order, item_ids: list[str], new_item_ids: list[str], same_id_error: bool
) -> tuple[float, Variant | None]:
    """Sum of new minus old prices over the pairs, and the last new variant looked up."""
    diff: float = 0
    variant = None
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=False):
        if same_id_error and item_id == new_item_id:
            raise ToolError("The new item id should be different from the old item id")
        item = next((i for i in order.items if i.item_id == item_id), None)
        if item is None:
            raise ToolError(f"Item {item_id} not found")
        variant = _variant(state, item.product_id, new_item_id)
        if not variant.available:
            raise ToolError(f"New item {new_item_id} not found or available")
        diff += variant.price - item.price
    return diff, variant


def _users_by_name(base: Any) -> dict[tuple[str, str], list[str]]:
    index: dict[tuple[str, str], list[str]] = {}
    for user_id, user in base.tables["users"].items():
        key = (user.name.first_name.lower(), user.name.last_name.lower())
        index.setdefault(key, []).append(user_id)
    return index


USERS_BY_NAME = Index("retail.users_by_name", _users_by_name)


def _users_by_email(base: Any) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for user_id, user in base.tables["users"].items():
        index.setdefault(user.email.lower(), []).append(user_id)
    return index


USERS_BY_EMAIL = Index("retail.users_by_email", _users_by_email)


def _products_by_item(base: Any) -> dict[str, str]:
    index: dict[str, str] = {}
    for product_id, product in base.tables["products"].items():
        for item_id in product.variants:
            index.setdefault(item_id, product_id)
    return index


PRODUCTS_BY_ITEM = Index("retail.products_by_item", _products_by_item)


# -- tools -----------------------------------------------------------------------------------------
@tool("write")
def cancel_pending_order(state: State, order_id: str, reason: str) -> Order:
    """Cancel a pending order and refund its payments (gift cards at once, other methods in 5-7
    business days). Explain the details and get the customer's explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        reason: Either 'no longer needed' or 'ordered by mistake'.
    """
    current = _order(state, order_id)
    if current.status != "pending":
        raise ToolError("Non-pending order cannot be cancelled")
    if reason not in CANCEL_REASONS:
        raise ToolError("Invalid reason")
    refunds = []
    for payment in current.payment_history:
        method = _payment_method(state, _user(state, current.user_id).user_id, payment.payment_method_id)
        refunds.append(
            OrderPayment(
                transaction_type="refund",
                amount=payment.amount,
                payment_method_id=payment.payment_method_id,
            )
        )
        if isinstance(method, GiftCard):
            _adjust_gift_card(state, current.user_id, payment.payment_method_id, payment.amount)
    order = state.mut("orders", order_id)
    order.status = "cancelled"
    order.cancel_reason = reason  # type: ignore[assignment]
    order.payment_history.extend(refunds)
    return order


@tool("write")
def exchange_delivered_order_items(
    state: State, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Order:
    """Exchange items of a delivered order for other variants of the same products. A delivered
    order can be returned or exchanged only once. Explain and get an explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        item_ids: Item ids to exchange, e.g. ['1008292230']; repeat an id to exchange several of it.
        new_item_ids: The replacement item ids, position by position, each of the same product as the item it replaces.
        payment_method_id: Payment method id that pays or receives the price difference, e.g. 'gift_card_0000000'.
    """
    order = _order(state, order_id)
    if order.status != "delivered":
        raise ToolError("Non-delivered order cannot be exchanged")
    _check_counts(item_ids, order, "Number of {item_id} not found.")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match.")
    diff, _ = _price_difference(state, order, item_ids, new_item_ids, same_id_error=False)
    diff = round(diff, 2)
    method = _payment_method(state, order.user_id, payment_method_id)
    if isinstance(method, GiftCard) and method.balance < diff:
        raise ToolError("Insufficient gift card balance to pay for the price difference")
    order = state.mut("orders", order_id)
    order.status = "exchange requested"
    order.exchange_items = sorted(item_ids)
    order.exchange_new_items = sorted(new_item_ids)
    order.exchange_payment_method_id = payment_method_id
    order.exchange_price_difference = float(diff)
    return order


@tool("read")
def find_user_id_by_name_zip(state: State, first_name: str, last_name: str, zip: str) -> str:
    """Find a customer's user id from first name, last name and zip code. Prefer looking up by
    email; use this when the customer cannot give an email or none matches.

    Args:
        first_name: The customer's first name, e.g. 'John'.
        last_name: The customer's last name, e.g. 'Doe'.
        zip: The customer's zip code, e.g. '12345'.
    """
    index = USERS_BY_NAME.of(state.base)
    for user_id in index.get((first_name.lower(), last_name.lower()), ()):
        if state.get("users", user_id).address.zip == zip:
            return user_id
    raise ToolError("User not found")


@tool("read")
def find_user_id_by_email(state: State, email: str) -> str:
    """Find a customer's user id from their email address.

    Args:
        email: The customer's email, e.g. 'someone@example.com'.
    """
    index = USERS_BY_EMAIL.of(state.base)
    for user_id in index.get(email.lower(), ()):
        return user_id
    raise ToolError("User not found")


@tool("read")
def get_order_details(state: State, order_id: str) -> Order:
    """Look up an order: status, items, shipping address, fulfillments and payments.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
    """
    return _order(state, order_id)


@tool("read")
def get_product_details(state: State, product_id: str) -> Product:
    """Look up a product type and all its variants (item ids, options, price, availability).

    Args:
        product_id: The product id, e.g. '6086499569'; not an item id.
    """
    return _product(state, product_id)


@tool("read")
def get_item_details(state: State, item_id: str) -> Variant:
    """Look up one item (a product variant): its options, price and availability.

    Args:
        item_id: The item id, e.g. '1008292230'; not a product id.
    """
    product_id = PRODUCTS_BY_ITEM.of(state.base).get(item_id)
    if product_id is None:
        raise ToolError("Item not found")
    return state.get("products", product_id).variants[item_id]


@tool("read")
def get_user_details(state: State, user_id: str) -> User:
    """Look up a customer's profile: name, address, email, payment methods and order ids.

    Args:
        user_id: The user id, e.g. 'sara_doe_496'.
    """
    return _user(state, user_id)


@tool("read")
def list_all_product_types(state: State) -> str:
    """List every product type in the store as a JSON object from product name to product id."""
    names = {product.name: product.product_id for _, product in state.items("products")}
    return json.dumps(names, sort_keys=True)


@tool("write")
def modify_pending_order_address(
    current: State,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Order:
    """Change the shipping address of a pending order. Explain and get an explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        address1: First address line, e.g. '123 Main St'.
        address2: Second address line, e.g. 'Apt 1', or ''.
        city: City, e.g. 'San Francisco'.
        state: State, e.g. 'CA'.
        country: Country, e.g. 'USA'.
        zip: Zip code, e.g. '12345'.
    """
    if "pending" not in _order(current, order_id).status:
        raise ToolError("Non-pending order cannot be modified")
    order = current.mut("orders", order_id)
    order.address = UserAddress(
        address1=address1, address2=address2, city=city, country=country, state=state, zip=zip
    )
    return order


@tool("write")
def modify_pending_order_items(
    state: State, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Order:
    """Swap items of a pending order for other variants of the same products. Possible only once
    per order. Explain and get an explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        item_ids: Item ids to change, e.g. ['1008292230']; repeat an id to change several of it.
        new_item_ids: The replacement item ids, position by position, each of the same product as the item it replaces.
        payment_method_id: Payment method id that pays or receives the price difference, e.g. 'gift_card_0000000'.
    """
    current = _order(state, order_id)
    if current.status != "pending":
        raise ToolError("Non-pending order cannot be modified")
    _check_counts(item_ids, current, "{item_id} not found")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match")
    diff, variant = _price_difference(state, current, item_ids, new_item_ids, same_id_error=True)
    method = _payment_method(state, current.user_id, payment_method_id)
    if isinstance(method, GiftCard) and method.balance < diff:
        raise ToolError("Insufficient gift card balance to pay for the new item")
    order = state.mut("orders", order_id)
    order.payment_history.append(
        OrderPayment(
            transaction_type="payment" if diff > 0 else "refund",
            amount=abs(diff),
            payment_method_id=payment_method_id,
        )
    )
    if isinstance(method, GiftCard):
        _adjust_gift_card(state, current.user_id, payment_method_id, -diff)
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=False):
        item: OrderItem = next(i for i in order.items if i.item_id == item_id)
        item.item_id = new_item_id
        # tau2-bench prices and describes every swapped item from the last variant looked up.
        item.price = variant.price  # type: ignore[union-attr]
        item.options = dict(variant.options)  # type: ignore[union-attr]
    order.status = "pending (item modified)"
    return order


@tool("write")
def modify_pending_order_payment(state: State, order_id: str, payment_method_id: str) -> Order:
    """Move a pending order's payment to another payment method of the customer. Explain and get
    an explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        payment_method_id: The new payment method id, e.g. 'gift_card_0000000' or 'credit_card_0000000'.
    """
    current = _order(state, order_id)
    if "pending" not in current.status:
        raise ToolError("Non-pending order cannot be modified")
    method = _payment_method(state, current.user_id, payment_method_id)
    history = current.payment_history
    if len(history) != 1 or history[0].transaction_type != "payment":
        raise ToolError("There should be exactly one payment for a pending order")
    old_id = history[0].payment_method_id
    if old_id == payment_method_id:
        raise ToolError("The new payment method should be different from the current one")
    amount = history[0].amount
    if isinstance(method, GiftCard) and method.balance < amount:
        raise ToolError("Insufficient gift card balance to pay for the order")
    order = state.mut("orders", order_id)
    order.payment_history.extend(
        [
            OrderPayment(transaction_type="payment", amount=amount, payment_method_id=payment_method_id),
            OrderPayment(transaction_type="refund", amount=amount, payment_method_id=old_id),
        ]
    )
    if isinstance(method, GiftCard):
        _adjust_gift_card(state, current.user_id, payment_method_id, -amount)
    if isinstance(_payment_method(state, current.user_id, old_id), GiftCard):
        _adjust_gift_card(state, current.user_id, old_id, amount)
    return order


@tool("write")
def modify_user_address(
    current: State,
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> User:
    """Change a customer's default address. Explain and get an explicit yes first.

    Args:
        user_id: The user id, e.g. 'sara_doe_496'.
        address1: First address line, e.g. '123 Main St'.
        address2: Second address line, e.g. 'Apt 1', or ''.
        city: City, e.g. 'San Francisco'.
        state: State, e.g. 'CA'.
        country: Country, e.g. 'USA'.
        zip: Zip code, e.g. '12345'.
    """
    _user(current, user_id)
    user = current.mut("users", user_id)
    user.address = UserAddress(
        address1=address1, address2=address2, city=city, country=country, state=state, zip=zip
    )
    return user


@tool("write")
def return_delivered_order_items(
    state: State, order_id: str, item_ids: list[str], payment_method_id: str
) -> Order:
    """Request a return of items from a delivered order; the refund goes to the original payment
    method or a gift card, and the customer gets return instructions by email. Explain and get an
    explicit yes first.

    Args:
        order_id: The order id, starting with '#', e.g. '#W0000000'.
        item_ids: Item ids to return, e.g. ['1008292230']; repeat an id to return several of it.
        payment_method_id: Where the refund goes: the order's original payment method or a gift
            card, e.g. 'gift_card_0000000'.
    """
    current = _order(state, order_id)
    if current.status != "delivered":
        raise ToolError("Non-delivered order cannot be returned")
    user = _user(state, current.user_id)
    method = _payment_method(state, user.user_id, payment_method_id)
    if (
        not isinstance(method, GiftCard)
        and payment_method_id != current.payment_history[0].payment_method_id
    ):
        raise ToolError("Payment method should be the original payment method")
    _check_counts(item_ids, current, "Some item not found")
    order = state.mut("orders", order_id)
    order.status = "return requested"
    order.return_items = sorted(item_ids)
    order.return_payment_method_id = payment_method_id
    return order


TOOLS = (
    calculate,
    cancel_pending_order,
    exchange_delivered_order_items,
    find_user_id_by_name_zip,
    find_user_id_by_email,
    get_order_details,
    get_product_details,
    get_item_details,
    get_user_details,
    list_all_product_types,
    modify_pending_order_address,
    modify_pending_order_items,
    modify_pending_order_payment,
    modify_user_address,
    return_delivered_order_items,
    transfer_to_human_agents,
)
