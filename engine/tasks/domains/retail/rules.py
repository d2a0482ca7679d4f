"""Retail selection rules: how a user points at an order, items, a variant or a payment method, the
reads an agent needs to resolve each, and the tie-free comparison behind it.

Rules only read. Each returns ``Pick``s, one per way of naming the target that singles it out; a
rule whose comparison would tie is not offered. Order rules must pick the same order on the task's
initial state too, so the user's memory and the agent's reads agree whenever the agent reads.
Nothing here builds intents (``retail`` does) or draws at random.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from engine.tasks.domains.retail.common import (
    Pick,
    Reader,
    article,
    auth_read,
    describe_methods,
    options_text,
    order_read,
    order_total,
    product_read,
    user_read,
)
from engine.tasks.model import Candidate, Selection
from engine.tasks.recipe import Reject, unique_best
from envs.kernel import BaseDB, Index
from envs.retail.schema import GiftCard, Order, OrderItem, User, Variant

__all__ = ["item_picks", "order_picks", "payment_picks", "variant_picks"]

Purpose = Literal["difference", "new", "refund"]


# -- orders -------------------------------------------------------------------------------------
class _Facts(NamedTuple):
    """What order rules compare, computed once per order."""

    total: float
    count: float
    names: frozenset[str]
    variants: frozenset[tuple[str, str, str]]
    city: str
    method: str
    status: str


ORDER_PICKS: Index[dict[Any, Any]] = Index("retail.order_picks", lambda base: {})
"""Per base: the order picks already worked out, by the facts they depend on."""


VARIANT_PICKS: Index[dict[Any, Any]] = Index("retail.variant_picks", lambda base: {})
"""Per base: the variant picks already worked out, by item."""


def _facts(order: Order) -> _Facts:
    return _Facts(
        order_total(order),
        float(len(order.items)),
        frozenset(i.name for i in order.items),
        frozenset((i.name, k, v) for i in order.items for k, v in i.options.items()),
        order.address.city,
        order.payment_history[0].payment_method_id,
        order.status,
    )


Value = Callable[[_Facts], float]
Spec = tuple[str, str, Literal["min", "max"], str, Value, Callable[[_Facts], bool]]


def _any(_: _Facts) -> bool:
    return True


def _order_specs(target: _Facts, user: User, orders: Sequence[_Facts]) -> list[Spec]:
    """Candidate rules naming ``target`` by comparing the user's orders."""
    specs: list[Spec] = []
    per_name = Counter(n for o in orders for n in o.names)
    for name in sorted(target.names):
        has: Value = lambda o, n=name: float(n in o.names)  # noqa: E731
        specs.append(
            ("contains_product", f"the order that contains the {name.lower()}", "max", f"has {name}", has, _any)
        )
        if per_name[name] < 2:
            continue
        for n, key, value in sorted(v for v in target.variants if v[0] == name):
            has_opt: Value = lambda o, x=(n, key, value): float(x in o.variants)  # noqa: E731
            text = f"the order with the {name.lower()} whose {key} is {value}"
            specs.append(("contains_variant", text, "max", f"has {name} with {key} {value}", has_opt, _any))
    city, method, status = target.city, target.method, target.status
    specs.append(
        (
            "shipped_to_city",
            f"the order you had shipped to {city}",
            "max",
            "city",
            lambda o: float(o.city == city),
            _any,
        )
    )
    described = describe_methods(user).get(method)
    if described is not None:
        text = f"the order you paid for with {described}"
        specs.append(("paid_with", text, "max", "payment method", lambda o: float(o.method == method), _any))
    specs.append(
        ("only_status", f"your only {status} order", "max", "status", lambda o: float(o.status == status), _any)
    )
    in_status: Callable[[_Facts], bool] = lambda o: o.status == status  # noqa: E731
    total: Value = lambda o: o.total  # noqa: E731
    count: Value = lambda o: o.count  # noqa: E731
    for scope, prefix in ((_any, "the order"), (in_status, f"your {status} order")):
        specs.append(("highest_total", f"{prefix} with the highest total", "max", "order total", total, scope))
        specs.append(("lowest_total", f"{prefix} with the lowest total", "min", "order total", total, scope))
    specs.append(("most_items", "the order with the most items", "max", "number of items", count, _any))
    specs.append(("fewest_items", "the order with the fewest items", "min", "number of items", count, _any))
    return specs


def _winner(spec: Spec, order_ids: Sequence[str], orders: Sequence[_Facts], target: str) -> Selection | None:
    """The rule's ``Selection`` if it picks exactly ``target`` among two or more orders, else None."""
    rule, _, order, metric, value, scope = spec
    options = [(oid, value(o), oid) for oid, o in zip(order_ids, orders, strict=True) if scope(o)]
    if len(options) < 2:
        return None
    values = [v for _, v, _ in options]
    best = max(values) if order == "max" else min(values)
    if values.count(best) != 1 or options[values.index(best)][0] != target:
        return None
    picked = unique_best(rule, metric, order, options)
    return None if isinstance(picked, Reject) else picked[1]


def _hide(text: str) -> tuple[str, ...]:
    return (f"You do not remember the order id; tell the agent it is {text}.",)


def _base_facts(base: BaseDB) -> dict[str, _Facts]:
    return {oid: _facts(o) for oid, o in base.tables["orders"].items()}


ORDER_FACTS = Index("retail.order_facts", _base_facts)


def _now_facts(reader: Reader, order_id: str) -> _Facts:
    key = ("facts", order_id)
    found = reader.derived.get(key)
    if found is None:
        found = reader.derived[key] = _facts(reader.get("orders", order_id))
    return found


def order_picks(now_state: Reader, user_id: str, target: str) -> list[Pick]:
    """Every rule that singles out order ``target`` among the user's orders, now and initially.

    Cached per DB, user, target and what the rules compare of the user's orders.
    """
    base = now_state.base
    user: User = now_state.get("users", user_id)
    order_ids = tuple(user.orders)
    initial = ORDER_FACTS.of(base)
    before = tuple(initial[o] for o in order_ids)
    now = tuple(_now_facts(now_state, o) if now_state.is_changed("orders", o) else initial[o] for o in order_ids)
    cache = ORDER_PICKS.of(base)
    key = (user_id, target, now)
    picks = cache.get(key)
    if picks is None:
        picks = cache[key] = _order_picks(base, user, target, now, before)
    return picks


def _order_picks(base: BaseDB, user: User, target: str, now: Sequence[_Facts], before: Sequence[_Facts]) -> list[Pick]:
    user_id = user.user_id
    auth = auth_read(base, user_id)
    order_ids = list(user.orders)
    changed = now != before
    picks = [
        Pick("given", f"order {target}", target, (auth, order_read(target)), known=(f"You know order id {target}.",))
    ]
    if len(order_ids) < 2:
        return picks
    all_reads = (auth, user_read(user_id), *(order_read(o) for o in order_ids))
    if order_ids[-1] == target:
        selection = Selection(
            rule="most_recent",
            metric="position in the profile's order list",
            order="max",
            candidates=[Candidate(label=o, value=i) for i, o in enumerate(order_ids)],
            winner=target,
        )
        picks.append(
            Pick(
                "most_recent",
                "your most recent order",
                target,
                (auth, user_read(user_id), order_read(target)),
                (selection,),
                withhold=_hide("your most recent order"),
            )
        )
    for spec in _order_specs(now[order_ids.index(target)], user, now):
        selection = _winner(spec, order_ids, now, target)
        if selection is None or (changed and _winner(spec, order_ids, before, target) is None):
            continue
        picks.append(Pick(spec[0], spec[1], target, all_reads, (selection,), withhold=_hide(spec[1])))
    return picks


# -- items --------------------------------------------------------------------------------------
def item_picks(order: Order, whole: bool) -> list[Pick]:
    """Ways to name items of ``order`` (value: list of item ids); ``whole`` adds 'everything ...'."""
    items = order.items
    ids = Counter(i.item_id for i in items)
    names = Counter(i.name for i in items)
    picks: list[Pick] = []
    singles = [i for i in items if ids[i.item_id] == 1]
    for item in singles:
        if names[item.name] == 1:
            picks.append(Pick("named", f"the {item.name.lower()}", [item.item_id]))
            continue
        twins = [i for i in items if i.name == item.name and i is not item]
        for key, value in item.options.items():
            if all(t.options.get(key) != value for t in twins):
                text = f"the {item.name.lower()} with {key} {value}"
                picks.append(Pick("named_variant", text, [item.item_id]))
                break
    if len(items) >= 2:
        options = [(f"{i.name} {i.item_id} #{n}", i.price, i) for n, i in enumerate(items)]
        for rule, order_by, text in (
            ("cheapest_item", "min", "the cheapest item in the order"),
            ("priciest_item", "max", "the most expensive item in the order"),
        ):
            picked = unique_best(rule, "item price", order_by, options)  # type: ignore[arg-type]
            if not isinstance(picked, Reject) and ids[picked[0].item_id] == 1:
                picks.append(Pick(rule, text, [picked[0].item_id], selections=(picked[1],)))
    if whole and len(items) >= 2:
        picks.append(Pick("all_items", "every item", [i.item_id for i in items]))
        for item in singles:
            if names[item.name] == 1 and len(items) >= 3:
                rest = [i.item_id for i in items if i is not item]
                picks.append(Pick("all_but", f"every item except the {item.name.lower()}", rest))
    return picks


# -- variants -----------------------------------------------------------------------------------
def variant_picks(state: Reader, item: OrderItem) -> list[Pick]:
    """Ways to name an available replacement variant of ``item`` (value: the new item id).

    Products never change in a task, so the answer is cached per DB and item.
    """
    cache = VARIANT_PICKS.of(state.base)
    key = (item.product_id, item.item_id, tuple(item.options.items()))
    picks = cache.get(key)
    if picks is None:
        picks = cache[key] = _variant_picks(state, item)
    return picks


def _variant_picks(state: Reader, item: OrderItem) -> list[Pick]:
    product = state.get("products", item.product_id)
    reads = (product_read(item.product_id),)
    name = item.name.lower()
    variants: list[Variant] = list(product.variants.values())
    others = [v for v in variants if v.item_id != item.item_id and v.available]
    picks: list[Pick] = []
    for key, current in item.options.items():
        values = sorted({v.options.get(key, "") for v in variants} - {current, ""})
        for value in values:
            wanted = {**item.options, key: value}
            match = [v for v in variants if v.options == wanted]
            if len(match) == 1 and match[0].available and match[0].item_id != item.item_id:
                selection = Selection(
                    rule="same_but_option",
                    metric=f"same options but {key} {value}",
                    order="max",
                    candidates=[Candidate(label=v.item_id, value=float(v.options == wanted)) for v in variants],
                    winner=match[0].item_id,
                )
                picks.append(
                    Pick(
                        "same_but_option",
                        f"the same {name} but with {key} {value}",
                        match[0].item_id,
                        reads,
                        (selection,),
                    )
                )
    labelled = [(v.item_id, v.price, v) for v in others]
    for rule, order_by, text in (
        ("cheapest_variant", "min", f"the cheapest available {name}"),
        ("priciest_variant", "max", f"the most expensive available {name}"),
    ):
        picked = unique_best(rule, "variant price", order_by, labelled)  # type: ignore[arg-type]
        if len(labelled) >= 2 and not isinstance(picked, Reject):
            picks.append(Pick(rule, text, picked[0].item_id, reads, (picked[1],)))
    pairs = sorted({(k, v) for o in others for k, v in o.options.items()})
    for key, value in pairs:
        scoped = [c for c in labelled if c[2].options.get(key) == value]
        picked = unique_best("cheapest_with_option", "variant price", "min", scoped)
        if len(scoped) >= 2 and not isinstance(picked, Reject):
            text = f"the cheapest available {name} with {key} {value}"
            picks.append(Pick("cheapest_with_option", text, picked[0].item_id, reads, (picked[1],)))
    for v in others:
        if sum(o.options == v.options for o in variants) == 1:
            picks.append(
                Pick("exact_options", f"{article(name)} {name} with {options_text(v.options)}", v.item_id, reads)
            )
    return picks


# -- payment methods ----------------------------------------------------------------------------
def payment_picks(state: Reader, user_id: str, order: Order, purpose: Purpose, amount: float) -> list[Pick]:
    """Ways to name the payment method for a price difference, a new payment or a refund.

    Only methods the policy allows are offered: a gift card must cover ``amount`` when it pays;
    a refund goes to the original method or a gift card; a new payment differs from the current.
    """
    user: User = state.get("users", user_id)
    original = order.payment_history[0].payment_method_id
    methods = user.payment_methods

    def allowed(method_id: str) -> bool:
        method = methods[method_id]
        if purpose == "refund":
            return method_id == original or isinstance(method, GiftCard)
        if purpose == "new" and method_id == original:
            return False
        return not isinstance(method, GiftCard) or method.balance >= amount

    picks: list[Pick] = []
    single = len(order.payment_history) == 1  # after a payment change "original" would be ambiguous
    if purpose != "new" and single and original in methods and allowed(original):
        picks.append(Pick("original_method", "the order's original payment method", original))
    reads = (user_read(user_id),)
    for method_id, text in describe_methods(user).items():
        if allowed(method_id):
            picks.append(Pick("named_method", text, method_id, reads))
    cards = [(k, m.balance, k) for k, m in methods.items() if isinstance(m, GiftCard)]
    picked = unique_best("largest_gift_card", "gift card balance", "max", cards)
    if len(cards) >= 2 and not isinstance(picked, Reject) and allowed(picked[0]):
        picks.append(
            Pick("largest_gift_card", "your gift card with the highest balance", picked[0], reads, (picked[1],))
        )
    return picks
