"""The retail DB as msgspec Structs, field for field and in the field order of tau2-bench's models."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

__all__ = [
    "CreditCard",
    "GiftCard",
    "Order",
    "OrderFulfillment",
    "OrderItem",
    "OrderPayment",
    "PaymentMethod",
    "Paypal",
    "Product",
    "RetailDB",
    "User",
    "UserAddress",
    "UserName",
    "Variant",
]

OrderStatus = Literal[
    "processed",
    "pending",
    "pending (item modified)",
    "delivered",
    "cancelled",
    "exchange requested",
    "return requested",
]
CancelReason = Literal["no longer needed", "ordered by mistake"]


class Variant(Struct, kw_only=True):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(Struct, kw_only=True):
    name: str
    product_id: str
    variants: dict[str, Variant]


class UserName(Struct, kw_only=True):
    first_name: str
    last_name: str


class UserAddress(Struct, kw_only=True):
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class CreditCard(Struct, kw_only=True, tag_field="source", tag="credit_card"):
    id: str
    brand: str
    last_four: str


class Paypal(Struct, kw_only=True, tag_field="source", tag="paypal"):
    id: str


class GiftCard(Struct, kw_only=True, tag_field="source", tag="gift_card"):
    id: str
    balance: float


PaymentMethod = CreditCard | GiftCard | Paypal


class User(Struct, kw_only=True):
    user_id: str
    name: UserName
    address: UserAddress
    email: str
    payment_methods: dict[str, PaymentMethod]
    orders: list[str]


class OrderFulfillment(Struct, kw_only=True):
    tracking_id: list[str]
    item_ids: list[str]


class OrderItem(Struct, kw_only=True):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class OrderPayment(Struct, kw_only=True):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class Order(Struct, kw_only=True):
    order_id: str
    user_id: str
    address: UserAddress
    items: list[OrderItem]
    status: OrderStatus
    fulfillments: list[OrderFulfillment]
    payment_history: list[OrderPayment]
    cancel_reason: CancelReason | None = None
    exchange_items: list[str] | None = None
    exchange_new_items: list[str] | None = None
    exchange_payment_method_id: str | None = None
    exchange_price_difference: float | None = None
    return_items: list[str] | None = None
    return_payment_method_id: str | None = None


class RetailDB(Struct, kw_only=True):
    """The whole retail database: tables keyed by product id, user id and order id."""

    products: dict[str, Product]
    users: dict[str, User]
    orders: dict[str, Order]
