"""Retail building blocks shared by the rules and recipes: picks, reads, identity, names, addresses.

A ``Pick`` is one way the user names something (an order, items, a variant, a payment method, an
address, a question), with the reads an agent needs to resolve it. A ``Reader`` memoizes record
reads of one state during one sampling step (the kernel decodes a changed record on every get).
Nothing here chooses anything at random except ``new_address``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from engine.tasks.model import EvidenceRead, Selection
from engine.tasks.recipe import Reject, read, unique_best
from envs.kernel import BaseDB, Index, State
from envs.retail import DOMAIN
from envs.retail.schema import CreditCard, GiftCard, Order, PaymentMethod, User

__all__ = [
    "Pick",
    "Reader",
    "address_args",
    "address_text",
    "article",
    "auth_read",
    "describe_methods",
    "identity",
    "new_address",
    "options_text",
    "order_read",
    "order_total",
    "price_questions",
    "product_read",
    "user_read",
]

STREETS = (
    "Maple Avenue",
    "Oak Street",
    "Cedar Lane",
    "Elm Street",
    "Pine Road",
    "Lakeview Drive",
    "Hillcrest Road",
    "River Road",
    "Park Avenue",
    "Willow Lane",
    "Sunset Boulevard",
    "Main Street",
)


@dataclass(frozen=True)
class Pick:
    """One way to name a target: rule id, the user's words, the target, reads and comparisons."""

    rule: str
    text: str
    value: Any
    reads: tuple[EvidenceRead, ...] = ()
    selections: tuple[Selection, ...] = ()
    known: tuple[str, ...] = ()
    withhold: tuple[str, ...] = ()

    @cached_property
    def keys(self) -> frozenset[str]:
        """The distinct read calls this pick needs (``EvidenceRead.key()``)."""
        return frozenset(r.key() for r in self.reads)


class Reader:
    """Memoized ``get`` over one state, for one sampling step (never across writes)."""

    __slots__ = ("_memo", "base", "derived", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self.base: BaseDB = state.base
        self._memo: dict[tuple[str, str], Any] = {}
        self.derived: dict[Any, Any] = {}  # values computed from records in this step (order facts)

    def get(self, table: str, key: str) -> Any:
        """The visible record, or None; never mutate it."""
        slot = (table, key)
        try:
            return self._memo[slot]
        except KeyError:
            record = self._memo[slot] = self.state.get(table, key)
            return record

    def is_changed(self, table: str, key: str) -> bool:
        """Whether the state holds its own version of the record."""
        return self.state.is_changed(table, key)


# -- reads and identity --------------------------------------------------------------------------
def user_read(user_id: str) -> EvidenceRead:
    """The profile read: order ids, payment methods, default address."""
    return read("get_user_details", "list the user's orders and payment methods", user_id=user_id)


def order_read(order_id: str) -> EvidenceRead:
    """The order read: status, items, address, payments."""
    return read("get_order_details", "check the order's status, items and payments", order_id=order_id)


def product_read(product_id: str) -> EvidenceRead:
    """The product read: every variant with options, price and availability."""
    return read("get_product_details", "compare the product's variants", product_id=product_id)


def _by_zip(base: BaseDB) -> frozenset[str]:
    """Users who authenticate by name and zip: about a third, chosen by a stable hash of the id,
    and only where that lookup finds exactly them."""
    found = set()
    state = base.new_state()
    for user_id, user in base.tables["users"].items():
        if zlib.crc32(user_id.encode()) % 3 != 0:
            continue
        name = {"first_name": user.name.first_name, "last_name": user.name.last_name, "zip": user.address.zip}
        if DOMAIN.call(state, "find_user_id_by_name_zip", name).output == user_id:
            found.add(user_id)
    return frozenset(found)


AUTH_BY_ZIP = Index("retail.auth_by_zip", _by_zip)


def auth_read(base: BaseDB, user_id: str) -> EvidenceRead:
    """The lookup that authenticates the user, by email or by name and zip.

    Made at the start of the conversation, so it uses the initial profile (a later address change
    must not change the zip the user gives).
    """
    user: User = base.tables["users"][user_id]
    if user_id in AUTH_BY_ZIP.of(base):
        return read(
            "find_user_id_by_name_zip",
            "authenticate the user",
            first_name=user.name.first_name,
            last_name=user.name.last_name,
            zip=user.address.zip,
        )
    return read("find_user_id_by_email", "authenticate the user", email=user.email)


def identity(state: State, user_id: str) -> list[str]:
    """What the user says to authenticate, matching ``auth_read`` (the initial profile)."""
    user: User = state.base.tables["users"][user_id]
    name = f"{user.name.first_name} {user.name.last_name}"
    if user_id in AUTH_BY_ZIP.of(state.base):
        return [
            f"Your name is {name} and your zip code is {user.address.zip}.",
            "You do not remember your email address.",
        ]
    return [f"Your name is {name} and your email is {user.email}."]


# -- names and numbers -----------------------------------------------------------------------------
def order_total(order: Order) -> float:
    """The sum of the order's item prices, rounded to cents."""
    return round(sum(i.price for i in order.items), 2)


def _describe(method_id: str, method: PaymentMethod, gift_cards: int) -> str:
    if isinstance(method, CreditCard):
        return f"your {method.brand} credit card ending in {method.last_four}"
    if isinstance(method, GiftCard):
        return "your gift card" if gift_cards == 1 else f"your gift card {method_id}"
    return "your PayPal account"


def describe_methods(user: User) -> dict[str, str]:
    """How the user names each payment method; methods whose name would be ambiguous are left out."""
    gift_cards = sum(isinstance(m, GiftCard) for m in user.payment_methods.values())
    names = {k: _describe(k, m, gift_cards) for k, m in user.payment_methods.items()}
    counts = Counter(names.values())
    return {k: v for k, v in names.items() if counts[v] == 1}


def article(word: str) -> str:
    """'an' before a vowel, else 'a'."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def options_text(options: dict[str, str]) -> str:
    """'color red, size L' from a variant's options."""
    return ", ".join(f"{k} {v}" for k, v in options.items())


def _price_questions(b: BaseDB) -> list[Pick]:
    picks = []
    for product_id in sorted(b.tables["products"]):
        product = b.tables["products"][product_id]
        avail = [(v.item_id, v.price, v) for v in product.variants.values() if v.available]
        reads = (
            read("list_all_product_types", "find the product id"),
            read("get_product_details", "compare the variants' prices", product_id=product_id),
        )
        for end, which in (("min", "cheapest"), ("max", "most expensive")):
            picked = unique_best(f"{which} variant", "variant price", end, avail)  # type: ignore[arg-type]
            if len(avail) >= 2 and not isinstance(picked, Reject):
                text = f"the price of the {which} available {product.name.lower()}"
                picks.append(Pick("price_question", text, f"{picked[0].price:.2f}", reads, (picked[1],)))
    return picks


PRICE_QUESTIONS = Index("retail.price_questions", _price_questions)


def price_questions(base: BaseDB) -> list[Pick]:
    """'The price of the cheapest / most expensive available <product>' for every product where
    one variant wins outright (value: the answer the agent must state). Cached per DB."""
    return PRICE_QUESTIONS.of(base)


# -- addresses -----------------------------------------------------------------------------------
def address_args(address: Any) -> dict[str, str]:
    """The six address arguments of the address tools, from a record or a dict."""
    get = address.get if isinstance(address, dict) else lambda k: getattr(address, k)
    return {k: get(k) for k in ("address1", "address2", "city", "state", "country", "zip")}


def address_text(args: dict[str, str]) -> str:
    """One line: '12 Oak Street, Apt 3, Austin, TX 78701, USA'."""
    parts = [args["address1"], args["address2"], args["city"], f"{args['state']} {args['zip']}", args["country"]]
    return ", ".join(p for p in parts if p)


def _places(base: BaseDB) -> list[tuple[str, str, str, str]]:
    found = {
        (u.address.city, u.address.state, u.address.country, u.address.zip[:3]) for u in base.tables["users"].values()
    }
    return sorted(found)


PLACES = Index("retail.places", _places)


def new_address(base: BaseDB, rng: Any) -> dict[str, str]:
    """A fresh street address in a city the DB knows (seeded by ``rng``)."""
    city, state, country, zip3 = rng.choice(PLACES.of(base))
    unit = rng.choice(("", "", f"Apt {rng.randint(1, 40)}", f"Suite {rng.randint(100, 999)}"))
    return {
        "address1": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
        "address2": unit,
        "city": city,
        "state": state,
        "country": country,
        "zip": f"{zip3}{rng.randint(0, 99):02d}",
    }
