"""Retail task recipes: one per write intent (cancel one or several orders, modify a pending order's
address, payment or items, change the default address, return or exchange delivered items).

Each recipe picks a target the policy allows, then a way to name it (``retail_rules``) whose reads
come close to the composer's E hint (``_steer``); when the writes need fewer reads than the hint, up
to ``MAX_SIDE_QUESTIONS`` questions add reads whose answers the agent must state (``outputs``).
Dependent recipes act again on an earlier intent's order, reuse its new address, or pay with the
method its cancellation refunded. Policy checks live in ``retail_policy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from engine.tasks.domains.retail.common import (
    Pick,
    Reader,
    address_args,
    address_text,
    article,
    auth_read,
    identity,
    new_address,
    order_read,
    order_total,
    price_questions,
    user_read,
)
from engine.tasks.domains.retail.policy import CANCEL_REASONS, FIND_TOOLS, check_policy
from engine.tasks.domains.retail.refusals import REFUSALS
from engine.tasks.domains.retail.rules import item_picks, order_picks, payment_picks, variant_picks
from engine.tasks.model import Action, Intent
from engine.tasks.recipe import DomainSpec, ReadEquivalence, Recipe, Reject, SampleContext, act, facts
from envs.kernel import BaseDB, Index
from envs.retail.schema import Order

__all__ = ["MAX_SIDE_QUESTIONS", "SPEC"]

REASONS = tuple(sorted(CANCEL_REASONS))
SAME_ORDER_KINDS = frozenset({"modify_pending_order_address", "modify_pending_order_payment"})
"""Anchor kinds whose order a dependent intent acts on again ('and for that same order, ...')."""
MAX_SIDE_QUESTIONS = 2
MAX_SWAPS = 4
T = TypeVar("T", bound=Pick)


# -- steering -------------------------------------------------------------------------------------
TASK_USERS: Index[list[str]] = Index(
    "retail.task_users", lambda base: sorted(u for u, x in base.tables["users"].items() if x.orders)
)


def _known(ctx: SampleContext, *picks: Pick) -> set[str]:
    """Read keys already in the plan or needed by ``picks``."""
    known = set(ctx.seen)
    for p in picks:
        known |= p.keys
    return known


def _steer(ctx: SampleContext, options: Sequence[T], so_far: Sequence[Pick], want: int) -> T:
    """Pick, at random among the closest, an option whose new reads (beyond ``so_far``) come nearest
    ``want``."""
    known = _known(ctx, *so_far)
    scored = [(abs(len(o.keys - known) - want), o) for o in options]
    best = min(s for s, _ in scored)
    return ctx.rng.choice([o for s, o in scored if s == best])


def _left(ctx: SampleContext, *so_far: Pick) -> int:
    """How many new reads the hint still wants after ``so_far``."""
    return ctx.e_hint - (len(_known(ctx, *so_far)) - len(ctx.seen))


def _orders(r: Reader, ctx: SampleContext, status: str, single_payment: bool = False) -> list[str]:
    found = []
    for order_id in r.get("users", ctx.user_id).orders:
        order: Order = r.get("orders", order_id)
        history = order.payment_history
        one = len(history) == 1 and history[0].transaction_type == "payment"
        if order.status == status and (one or not single_payment):
            found.append(order_id)
    return found


def _statuses(base: BaseDB) -> dict[str, frozenset[str]]:
    """Each user's order statuses in the initial DB."""
    orders = base.tables["orders"]
    return {u: frozenset(orders[o].status for o in x.orders) for u, x in base.tables["users"].items()}


STATUSES = Index("retail.statuses", _statuses)


def _target(
    r: Reader, ctx: SampleContext, kind: str, status: str, single_payment: bool = False, later: int = 0
) -> Pick | Reject:
    """An eligible order and a rule naming it, steered toward the hint less ``later`` reads that the
    rest of the intent is expected to add."""
    if status not in STATUSES.of(ctx.base)[ctx.user_id]:
        return Reject(f"{kind}: no {status} order")  # no write makes an order pending or delivered
    anchor = ctx.anchor_intent()
    if anchor is not None and anchor.kind in SAME_ORDER_KINDS:
        if anchor.target not in _orders(r, ctx, status, single_payment):
            return Reject(f"{kind}: anchored order not eligible")
        reads = (auth_read(ctx.base, ctx.user_id), order_read(anchor.target))
        return Pick("same_order", "the same order", anchor.target, reads)
    touched = {i.target for i in ctx.prior} | {o for i in ctx.prior for o in i.params.get("orders", ())}
    eligible = [o for o in _orders(r, ctx, status, single_payment) if o not in touched]
    if not eligible:
        return Reject(f"{kind}: no {status} order")
    picks = [p for oid in eligible for p in order_picks(r, ctx.user_id, oid)]
    return _steer(ctx, picks, (), ctx.e_hint - later)


def _questions(r: Reader, ctx: SampleContext, so_far: Sequence[Pick]) -> list[Pick]:
    """Side questions (value: the answer) that bring the intent's new reads closer to the hint."""
    if _left(ctx, *so_far) < 1:
        return []
    user = r.get("users", ctx.user_id)
    now = [r.get("orders", o) for o in user.orders]
    before = [ctx.base.tables["orders"][o] for o in user.orders]
    reads = (user_read(ctx.user_id), *(order_read(o) for o in user.orders))
    options: list[Pick] = []
    for status in ("delivered", "pending", "processed", "cancelled"):
        total = round(sum(order_total(o) for o in now if o.status == status), 2)
        again = round(sum(order_total(o) for o in before if o.status == status), 2)
        if total > 0 and total == again and sum(o.status == status for o in now) >= 2:
            text = f"the combined total of all your {status} orders"
            options.append(Pick("total_question", text, f"{total:.2f}", reads))
    prices = price_questions(ctx.base)
    options.extend(ctx.rng.sample(prices, min(4, len(prices))))
    chosen: list[Pick] = []
    for _ in range(MAX_SIDE_QUESTIONS):
        want = _left(ctx, *so_far, *chosen)
        if want < 1 or not options:
            break
        best = _steer(ctx, options, (*so_far, *chosen), want)
        if abs(want - len(best.keys - _known(ctx, *so_far, *chosen))) >= want:
            break
        chosen.append(best)
        options.remove(best)
    return chosen


def _intent(
    r: Reader,
    ctx: SampleContext,
    kind: str,
    parts: Sequence[Pick],
    actions: list[Action],
    wants: str,
    known: Sequence[str] = (),
    if_fail: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    outputs: Sequence[str] = (),
) -> Intent:
    """Assemble an intent from its picks (the first names the target); side questions may add reads."""
    auth = Pick("auth", "", None, (auth_read(ctx.base, ctx.user_id),))
    questions = _questions(r, ctx, (auth, *parts))
    reads = list({x.key(): x for p in (auth, *parts, *questions) for x in p.reads}.values())
    return Intent(
        kind=kind,
        rule="+".join(dict.fromkeys(p.rule for p in parts)),
        rule_text="; ".join(p.text for p in parts),
        actions=actions,
        reads=reads,
        facts=facts(
            known=[k for p in parts for k in p.known] + list(known),
            wants=[wants] + [f"You also want to know {q.text}." for q in questions],
            withhold=list(dict.fromkeys(w for p in parts for w in p.withhold)),
            if_fail=if_fail,
        ),
        selections=[s for p in (*parts, *questions) for s in p.selections],
        target=str(parts[0].value),
        params=params or {},
        outputs=[*outputs, *(q.value for q in questions)],
    )


# -- recipes ------------------------------------------------------------------------------------
def _cancel(ctx: SampleContext) -> Intent | Reject:
    kind = "cancel_pending_order"
    r = Reader(ctx.state)
    pick = _target(r, ctx, kind, "pending")
    if isinstance(pick, Reject):
        return pick
    reason = ctx.rng.choice(REASONS)
    return _intent(
        r,
        ctx,
        kind,
        [pick],
        [act(kind, order_id=pick.value, reason=reason)],
        f"Cancel {pick.text}.",
        known=[f"Your reason for cancelling: {reason}."],
        if_fail=["If the agent says it cannot be cancelled, accept that."],
        params={"reason": reason},
    )


def _cancel_all(ctx: SampleContext) -> Intent | Reject:
    """'Cancel every pending order of mine that contains a <product>': one write per order."""
    kind = "cancel_pending_orders"
    r = Reader(ctx.state)
    user = r.get("users", ctx.user_id)
    holders: dict[str, list[str]] = {}
    for order_id in user.orders:
        for name in sorted({i.name for i in r.get("orders", order_id).items}):
            holders.setdefault(name, []).append(order_id)
    initial = ctx.base.tables["orders"]
    choices = []
    for name, ids in sorted(holders.items()):
        now = [o for o in ids if r.get("orders", o).status == "pending"]
        before = [o for o in ids if initial[o].status == "pending"]
        if 2 <= len(now) <= ctx.w_left and now == before and not {i.target for i in ctx.prior} & set(now):
            choices.append((name, now))
    if not choices:
        return Reject(f"{kind}: no product in several pending orders")
    name, targets = ctx.rng.choice(choices)
    reason = ctx.rng.choice(REASONS)
    reads = (user_read(ctx.user_id), *(order_read(o) for o in user.orders))
    text = f"every pending order of yours that contains {article(name)} {name.lower()}"
    pick = Pick(
        "all_pending_containing", text, targets[0], reads, withhold=("You do not remember the ids of those orders.",)
    )
    actions = [act("cancel_pending_order", order_id=o, reason=reason) for o in targets]
    known = [f"Your reason for cancelling: {reason}."]
    return _intent(
        r, ctx, kind, [pick], actions, f"Cancel {text}.", known, params={"reason": reason, "orders": targets}
    )


def _destination(r: Reader, ctx: SampleContext, current: dict[str, str], exclude: str, so_far: Pick) -> Pick | None:
    """Where an address should change to: a new one, the default, or another order's address."""
    anchor = ctx.anchor_intent()
    if anchor is not None and anchor.kind in ("modify_user_address", "modify_pending_order_address"):
        args = {k: v for k, v in anchor.actions[0].arguments.items() if k not in ("order_id", "user_id")}
        return None if args == current else Pick("same_new_address", "the new address you just gave", args)
    user = r.get("users", ctx.user_id)
    fresh = new_address(ctx.base, ctx.rng)
    options = [Pick("given", address_text(fresh), fresh, known=(f"The new address is {address_text(fresh)}.",))]
    default = address_args(user.address)
    if default != current and exclude != ctx.user_id:
        options.append(Pick("default_address", "your default address on file", default, (user_read(ctx.user_id),)))
    for order_id in user.orders:
        address = address_args(r.get("orders", order_id).address)
        if order_id == exclude or address == current:
            continue
        for p in order_picks(r, ctx.user_id, order_id):
            if p.rule != "given":
                text = f"the address {p.text} was shipped to"
                rule = f"address_of_order:{p.rule}"
                hide = (*p.withhold, "You do not know that address by heart; it is on that order.")
                options.append(Pick(rule, text, address, p.reads, p.selections, withhold=hide))
    return _steer(ctx, options, (so_far,), _left(ctx, so_far))


def _order_address(ctx: SampleContext) -> Intent | Reject:
    kind = "modify_pending_order_address"
    r = Reader(ctx.state)
    pick = _target(r, ctx, kind, "pending")
    if isinstance(pick, Reject):
        return pick
    dest = _destination(r, ctx, address_args(r.get("orders", pick.value).address), pick.value, pick)
    if dest is None:
        return Reject(f"{kind}: address unchanged")
    action = act(kind, order_id=pick.value, **dest.value)
    return _intent(r, ctx, kind, [pick, dest], [action], f"Ship {pick.text} to {dest.text} instead.")


def _user_address(ctx: SampleContext) -> Intent | Reject:
    kind = "modify_user_address"
    if any(i.kind == kind for i in ctx.prior):
        return Reject(f"{kind}: address already changed")
    r = Reader(ctx.state)
    pick = Pick("profile", "your default address", ctx.user_id)
    dest = _destination(r, ctx, address_args(r.get("users", ctx.user_id).address), ctx.user_id, pick)
    if dest is None:
        return Reject(f"{kind}: address unchanged")
    action = act(kind, user_id=ctx.user_id, **dest.value)
    return _intent(r, ctx, kind, [pick, dest], [action], f"Change your default address to {dest.text}.")


def _order_payment(ctx: SampleContext) -> Intent | Reject:
    kind = "modify_pending_order_payment"
    r = Reader(ctx.state)
    pick = _target(r, ctx, kind, "pending", single_payment=True, later=1)
    if isinstance(pick, Reject):
        return pick
    order = r.get("orders", pick.value)
    methods = payment_picks(r, ctx.user_id, order, "new", order.payment_history[0].amount)
    anchor = ctx.anchor_intent()
    if anchor is not None and anchor.kind == "cancel_pending_order":
        refunded = r.get("orders", anchor.target).payment_history[0].payment_method_id
        text = "the payment method the cancelled order was refunded to"
        reads = (order_read(anchor.target),)
        methods = [Pick("refunded_method", text, m.value, reads) for m in methods if m.value == refunded]
    if not methods:
        return Reject(f"{kind}: no other usable payment method")
    method = _steer(ctx, methods, (pick,), _left(ctx, pick))
    action = act(kind, order_id=pick.value, payment_method_id=method.value)
    return _intent(r, ctx, kind, [pick, method], [action], f"Pay for {pick.text} with {method.text} instead.")


def _modify_items(ctx: SampleContext, kind: str, status: str) -> Intent | Reject:
    """Change a pending order's items or exchange a delivered order's: 1-3 items, all in one call."""
    r = Reader(ctx.state)
    pick = _target(r, ctx, kind, status, later=1)
    if isinstance(pick, Reject):
        return pick
    order: Order = r.get("orders", pick.value)
    by_item: dict[str, list[Pick]] = {}
    for p in item_picks(order, whole=False):
        by_item.setdefault(p.value[0], []).append(p)
    items = {i.item_id: i for i in order.items}
    swappable = [i for i in sorted(by_item) if variant_picks(r, items[i])]
    if not swappable:
        return Reject(f"{kind}: no item with another available variant")
    count = max(1, min(len(swappable), MAX_SWAPS, _left(ctx, pick), ctx.rng.randint(1, MAX_SWAPS)))
    chosen = ctx.rng.sample(swappable, count)
    names = [ctx.rng.choice(by_item[i]) for i in chosen]
    variants = [ctx.rng.choice(variant_picks(r, items[i])) for i in chosen]
    new = [v.value for v in variants]
    diff = round(
        sum(
            r.get("products", items[o].product_id).variants[n].price - items[o].price
            for o, n in zip(chosen, new, strict=True)
        ),
        2,
    )
    methods = payment_picks(r, ctx.user_id, order, "difference", diff)
    if not methods:
        return Reject(f"{kind}: no payment method covers the difference")
    method = _steer(ctx, methods, (pick, *variants), _left(ctx, pick, *variants))
    action = act(kind, order_id=pick.value, item_ids=chosen, new_item_ids=new, payment_method_id=method.value)
    swaps = "; ".join(f"{i.text} for {v.text}" for i, v in zip(names, variants, strict=True))
    verb = "exchange" if status == "delivered" else "change"
    wants = (
        f"You want to {verb} some items in {pick.text}: {swaps}. Any price difference should go"
        f" through {method.text}. Those are the only items you want to {verb}."
    )
    outputs = [f"{abs(diff):.2f}"] if diff and ctx.rng.random() < 0.5 else []
    if outputs:
        wants += " You want to know how much you will pay or get back for the difference."
    if_fail = ["If the agent says a wanted variant is unavailable, keep the order as is."]
    parts = [pick, *names, *variants, method]
    params = {"price_difference": diff}
    return _intent(r, ctx, kind, parts, [action], wants, if_fail=if_fail, params=params, outputs=outputs)


def _return(ctx: SampleContext) -> Intent | Reject:
    kind = "return_delivered_order_items"
    r = Reader(ctx.state)
    pick = _target(r, ctx, kind, "delivered")
    if isinstance(pick, Reject):
        return pick
    order: Order = r.get("orders", pick.value)
    named = item_picks(order, whole=True)
    if not named:
        return Reject(f"{kind}: items cannot be told apart")
    items = ctx.rng.choice(named)
    prices = {i.item_id: i.price for i in order.items}
    refund = round(sum(prices[i] for i in items.value), 2)
    methods = payment_picks(r, ctx.user_id, order, "refund", refund)
    if not methods:
        return Reject(f"{kind}: no method can take the refund")
    method = _steer(ctx, methods, (pick,), _left(ctx, pick))
    action = act(kind, order_id=pick.value, item_ids=sorted(items.value), payment_method_id=method.value)
    wants = f"Return {items.text} from {pick.text}; the refund goes to {method.text}."
    outputs = [f"{refund:.2f}"] if ctx.rng.random() < 0.5 else []
    if outputs:
        wants += " You want to know how much will be refunded."
    return _intent(r, ctx, kind, [pick, items, method], [action], wants, outputs=outputs)


def _users(base: BaseDB) -> list[str]:
    """Users with at least one order, sorted."""
    return TASK_USERS.of(base)


def _canonical_read(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """An order id with its ``#`` (agents often drop it; the tools accept it only with)."""
    if name == "get_order_details" and isinstance(args.get("order_id"), str):
        args["order_id"] = "#" + args["order_id"].lstrip("#")
    return args


def _product_lists_item(args: dict[str, Any], output: str) -> bool:
    """Whether a product's details (``output``) list the item ``args`` asks about."""
    item = str(args.get("item_id", "")).strip()
    return bool(item) and f'"{item}"' in output


READS = ReadEquivalence(
    identity=FIND_TOOLS,
    canonical=_canonical_read,
    implied={"get_item_details": ("get_product_details", _product_lists_item)},
)
"""Either user lookup identifies the customer; a product's details stand for its items' details."""


SPEC = DomainSpec(
    domain="retail",
    recipes=(
        Recipe("cancel_pending_order", ("cancel_pending_order",), _cancel),
        Recipe("cancel_pending_orders", ("cancel_pending_order",), _cancel_all, weight=0.3),
        Recipe(
            "modify_pending_order_address",
            ("modify_pending_order_address",),
            _order_address,
            follows=("modify_user_address", "modify_pending_order_payment"),
        ),
        Recipe(
            "modify_pending_order_payment",
            ("modify_pending_order_payment",),
            _order_payment,
            follows=("modify_pending_order_address", "cancel_pending_order"),
            weight=1.5,
        ),
        Recipe(
            "modify_pending_order_items",
            ("modify_pending_order_items",),
            lambda c: _modify_items(c, "modify_pending_order_items", "pending"),
            follows=("modify_pending_order_address", "modify_pending_order_payment"),
        ),
        Recipe(
            "modify_user_address",
            ("modify_user_address",),
            _user_address,
            follows=("modify_pending_order_address",),
            weight=0.4,
        ),
        Recipe("return_delivered_order_items", ("return_delivered_order_items",), _return),
        Recipe(
            "exchange_delivered_order_items",
            ("exchange_delivered_order_items",),
            lambda c: _modify_items(c, "exchange_delivered_order_items", "delivered"),
        ),
    ),
    policy=check_policy,
    users=_users,
    identity=identity,
    unknown="Item ids, product ids, prices and refund amounts: the agent looks them up; you do not know them"
    " in advance.",
    refusals=REFUSALS,
    reads=READS,
)
