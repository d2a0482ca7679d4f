"""Retail task synthesis: recipes, selection rules, evidence accounting and every retail policy rule."""

from __future__ import annotations

import json
import random
from collections import Counter

import msgspec
import pytest

from engine.tasks.domains.retail.common import Reader, auth_read
from engine.tasks.domains.retail.policy import REASONS, check_policy
from engine.tasks.domains.retail.rules import order_picks, variant_picks
from engine.tasks.model import Action, Blueprint, EvidenceRead, Intent, UserFacts
from engine.tasks.recipe import Reject, SampleContext, compose, get_spec
from engine.tasks.validate import validate
from envs import BaseDB, ToolKind, get_domain
from envs.retail.schema import (
    CreditCard,
    GiftCard,
    Order,
    OrderFulfillment,
    OrderItem,
    OrderPayment,
    Paypal,
    Product,
    RetailDB,
    User,
    UserAddress,
    UserName,
    Variant,
)

DOMAIN = get_domain("retail")
SPEC = get_spec("retail")
WRITE_TOOLS = {n for n, t in DOMAIN.tools.items() if t.kind is ToolKind.WRITE}


# -- a tiny hand-made DB where every policy rule can be broken -----------------------------------
def _variant(item_id: str, price: float, available: bool = True, **options: str) -> Variant:
    return Variant(item_id=item_id, options=options, available=available, price=price)


PRODUCTS = {
    "1000000001": Product(
        name="Kettle",
        product_id="1000000001",
        variants={
            "k1": _variant("k1", 50.0, color="red", capacity="1L"),
            "k2": _variant("k2", 60.0, color="blue", capacity="1L"),
            "k3": _variant("k3", 70.0, available=False, color="green", capacity="1L"),
            "k4": _variant("k4", 55.0, color="red", capacity="2L"),
        },
    ),
    "1000000002": Product(
        name="Lamp",
        product_id="1000000002",
        variants={
            "l1": _variant("l1", 30.0, color="white"),
            "l2": _variant("l2", 35.0, color="black"),
            "l3": _variant("l3", 30.0, color="grey"),
        },
    ),
}


def _item(item_id: str) -> OrderItem:
    for product in PRODUCTS.values():
        if item_id in product.variants:
            v = product.variants[item_id]
            return OrderItem(
                name=product.name, product_id=product.product_id, item_id=item_id, price=v.price, options=v.options
            )
    raise KeyError(item_id)


def _address(city: str) -> UserAddress:
    return UserAddress(address1="1 Elm Street", address2="", city=city, country="USA", state="NY", zip="10001")


def _order(order_id: str, user_id: str, status: str, items: list[str], method: str, city: str = "Albany") -> Order:
    lines = [_item(i) for i in items]
    total = round(sum(i.price for i in lines), 2)
    return Order(
        order_id=order_id,
        user_id=user_id,
        address=_address(city),
        items=lines,
        status=status,  # type: ignore[arg-type]
        fulfillments=[OrderFulfillment(tracking_id=["1"], item_ids=items)] if status == "delivered" else [],
        payment_history=[OrderPayment(transaction_type="payment", amount=total, payment_method_id=method)],
    )


def _tiny_db() -> RetailDB:
    ann = User(
        user_id="ann_lee_1",
        name=UserName(first_name="Ann", last_name="Lee"),
        address=_address("Albany"),
        email="ann@example.com",
        payment_methods={
            "credit_card_1": CreditCard(id="credit_card_1", brand="visa", last_four="1111"),
            "paypal_1": Paypal(id="paypal_1"),
            "gift_card_1": GiftCard(id="gift_card_1", balance=10.0),
        },
        orders=["#W1", "#W2", "#W3", "#W4", "#W6"],
    )
    bob = User(
        user_id="bob_ray_2",
        name=UserName(first_name="Bob", last_name="Ray"),
        address=_address("Utica"),
        email="bob@example.com",
        payment_methods={"credit_card_2": CreditCard(id="credit_card_2", brand="amex", last_four="2222")},
        orders=["#W5"],
    )
    orders = [
        _order("#W1", "ann_lee_1", "pending", ["k1"], "credit_card_1", city="Troy"),
        _order("#W2", "ann_lee_1", "pending", ["k1", "l1"], "gift_card_1"),
        _order("#W3", "ann_lee_1", "delivered", ["k2", "l2"], "credit_card_1"),
        _order("#W4", "ann_lee_1", "processed", ["l1"], "paypal_1"),
        _order("#W6", "ann_lee_1", "pending", ["l3"], "paypal_1"),
        _order("#W5", "bob_ray_2", "pending", ["l2"], "credit_card_2"),
    ]
    return RetailDB(
        products=dict(PRODUCTS), users={u.user_id: u for u in (ann, bob)}, orders={o.order_id: o for o in orders}
    )


@pytest.fixture(scope="module")
def tiny() -> BaseDB:
    return DOMAIN.from_struct(_tiny_db())


@pytest.fixture(scope="module")
def generated() -> BaseDB:
    return DOMAIN.from_struct(DOMAIN.generate_db(users=120, seed=7))


AUTH = EvidenceRead(name="find_user_id_by_email", arguments={"email": "ann@example.com"})


def _order_read(order_id: str) -> EvidenceRead:
    return EvidenceRead(name="get_order_details", arguments={"order_id": order_id})


Step = tuple[str, dict, "list[EvidenceRead] | None"]


def _blueprint(*steps: Step) -> Blueprint:
    """One intent per (tool, arguments, reads); reads default to authentication + the order read."""
    intents = []
    for name, args, reads in steps:
        if reads is None:
            reads = [AUTH, _order_read(args["order_id"])] if "order_id" in args else [AUTH]
        intents.append(
            Intent(
                kind=name,
                rule="given",
                rule_text="test",
                actions=[Action(name=name, arguments=args)],
                reads=reads,
                facts=UserFacts(),
                target=args.get("order_id", ""),
            )
        )
    return Blueprint(domain="retail", user_id="ann_lee_1", intents=intents)


def _address_args(city: str) -> dict[str, str]:
    return {"address1": "9 Oak Street", "address2": "", "city": city, "state": "NY", "country": "USA", "zip": "12208"}


def cancel(order: str, reason: str = "no longer needed", reads: list[EvidenceRead] | None = None) -> Step:
    return ("cancel_pending_order", {"order_id": order, "reason": reason}, reads)


def swap(tool: str, order: str, old: list[str], new: list[str], method: str = "paypal_1") -> Step:
    return (tool, {"order_id": order, "item_ids": old, "new_item_ids": new, "payment_method_id": method}, None)


def items(order: str, old: list[str], new: list[str], method: str = "paypal_1") -> Step:
    return swap("modify_pending_order_items", order, old, new, method)


def exchange(order: str, old: list[str], new: list[str], method: str = "paypal_1") -> Step:
    return swap("exchange_delivered_order_items", order, old, new, method)


def pay(order: str, method: str) -> Step:
    return ("modify_pending_order_payment", {"order_id": order, "payment_method_id": method}, None)


def ship(order: str) -> Step:
    return ("modify_pending_order_address", {"order_id": order, **_address_args("Troy")}, None)


def give_back(order: str, ids: list[str], method: str) -> Step:
    return ("return_delivered_order_items", {"order_id": order, "item_ids": ids, "payment_method_id": method}, None)


def move(user: str) -> Step:
    return ("modify_user_address", {"user_id": user, **_address_args("Troy")}, None)


# One blueprint per policy rule, each breaking exactly that rule (the last step is the violation).
VIOLATIONS: dict[str, tuple[Step, ...]] = {
    "policy: user not authenticated": (cancel("#W1", reads=[_order_read("#W1")]),),
    "policy: record of another user": (cancel("#W5"),),
    "policy: order status not checked": (cancel("#W1", reads=[AUTH]),),
    "policy: cancel needs a pending order": (cancel("#W4"),),
    "policy: cancel reason not allowed": (cancel("#W1", reason="found it cheaper"),),
    "policy: modify needs a pending order": (items("#W1", ["k1"], ["k2"]), ship("#W1")),
    "policy: order items already changed": (items("#W2", ["k1"], ["k2"]), items("#W2", ["l1"], ["l2"])),
    "policy: no items": (give_back("#W3", [], "credit_card_1"),),
    "policy: item lists differ in length": (items("#W2", ["k1", "l1"], ["k2"]),),
    "policy: item not in order": (give_back("#W3", ["k1"], "credit_card_1"),),
    "policy: new item of another product": (exchange("#W3", ["k2"], ["l1"]),),
    "policy: new item same as old": (exchange("#W3", ["k2"], ["k2"]),),
    "policy: new item not available": (exchange("#W3", ["k2"], ["k3"]),),
    "policy: payment method not the user's": (pay("#W1", "credit_card_2"),),
    "policy: gift card balance too low": (pay("#W1", "gift_card_1"),),
    "policy: order has more than one payment": (pay("#W1", "paypal_1"), pay("#W1", "credit_card_1")),
    "policy: payment method unchanged": (pay("#W1", "credit_card_1"),),
    "policy: return needs a delivered order": (give_back("#W1", ["k1"], "credit_card_1"),),
    "policy: refund must go to the original method or a gift card": (give_back("#W3", ["k2"], "paypal_1"),),
    "policy: exchange needs a delivered order": (exchange("#W1", ["k1"], ["k2"]),),
}


def test_every_policy_reason_has_a_violation() -> None:
    assert set(VIOLATIONS) == set(REASONS)


@pytest.mark.parametrize("reason", sorted(VIOLATIONS))
def test_policy_rule_rejects_its_violation(tiny: BaseDB, reason: str) -> None:
    outcome = validate(SPEC, tiny, _blueprint(*VIOLATIONS[reason]))
    assert outcome == Reject(reason)


@pytest.mark.parametrize(
    "steps",
    [
        (cancel("#W1", reason="ordered by mistake"),),
        (items("#W2", ["k1", "l1"], ["k4", "l3"]),),
        (pay("#W1", "paypal_1"), ship("#W1")),
        (give_back("#W3", ["k2", "l2"], "gift_card_1"),),
        (exchange("#W3", ["k2"], ["k1"], "gift_card_1"),),
        (move("ann_lee_1"),),
    ],
    ids=["cancel", "modify-items", "payment-then-address", "return-to-gift-card", "exchange-refund", "user-address"],
)
def test_policy_accepts_allowed_writes(tiny: BaseDB, steps: tuple) -> None:
    assert isinstance(validate(SPEC, tiny, _blueprint(*steps)), str)


def test_policy_denies_another_users_profile(tiny: BaseDB) -> None:
    bp = _blueprint(move("bob_ray_2"))
    assert validate(SPEC, tiny, bp) == Reject("policy: record of another user")


def test_policy_check_leaves_state_unchanged(tiny: BaseDB) -> None:
    state = tiny.new_state()
    intent = _blueprint(cancel("#W1")).intents[0]
    before = state.hash_hex()
    assert check_policy(state, intent.actions[0], intent, []) is None
    assert state.hash_hex() == before


# -- selection rules are tie-free ---------------------------------------------------------------
def test_order_rules_offer_only_unique_winners(tiny: BaseDB) -> None:
    reader = Reader(tiny.new_state())
    rules = {p.rule: p for p in order_picks(reader, "ann_lee_1", "#W4")}
    # #W4 (lamp, 30.00) ties #W6 (lamp, 30.00) on total and item count: those rules are not offered.
    assert "lowest_total" not in rules and "fewest_items" not in rules
    assert rules["only_status"].text == "your only processed order"
    assert "paid_with" not in rules  # PayPal paid for #W4 and #W6
    w1 = {p.rule: p for p in order_picks(reader, "ann_lee_1", "#W1")}
    assert w1["shipped_to_city"].text == "the order you had shipped to Troy"
    assert "contains_product" not in w1  # the kettle is in #W1 and #W2
    w6 = {p.rule for p in order_picks(reader, "ann_lee_1", "#W6")}
    assert "most_recent" in w6 and "most_recent" not in w1


def test_variant_rules_offer_only_unique_winners(tiny: BaseDB) -> None:
    reader = Reader(tiny.new_state())
    # For the black lamp, the other two lamps cost 30.00 each: no cheapest or priciest variant.
    black = {p.rule for p in variant_picks(reader, _item("l2"))}
    assert not black & {"cheapest_variant", "priciest_variant"}
    white = {p.rule: p.value for p in variant_picks(reader, _item("l1"))}
    assert white["cheapest_variant"] == "l3" and white["priciest_variant"] == "l2"
    red = [p for p in variant_picks(reader, _item("k1")) if p.rule == "same_but_option"]
    # Same kettle but capacity 2L is k4; "but color green" (k3) is unavailable, so not offered.
    assert {(p.text, p.value) for p in red} == {
        ("the same kettle but with color blue", "k2"),
        ("the same kettle but with capacity 2L", "k4"),
    }


# -- composed blueprints ------------------------------------------------------------------------
def _blueprints(base: BaseDB, seed: int, n: int) -> list[Blueprint]:
    rng = random.Random(seed)
    users = SPEC.users(base)
    found = []
    for _ in range(n):
        bp, _ = compose(SPEC, base, rng.choice(users), rng, w_target=rng.randint(1, 4), e_target=rng.randint(1, 12))
        if bp is not None:
            found.append(bp)
    return found


def _replay(base: BaseDB, bp: Blueprint) -> str:
    state = base.new_state()
    for action in bp.actions():
        assert not DOMAIN.call(state, action.name, action.arguments, strict=True).error
    return state.hash_hex()


def _check_blueprints(base: BaseDB, blueprints: list[Blueprint]) -> None:
    for bp in blueprints:
        goal = validate(SPEC, base, bp)
        assert isinstance(goal, str), goal
        assert goal == _replay(base, bp)
        keys = [r.key() for i in bp.intents for r in i.reads]
        assert len(bp.evidence()) == len(set(keys))
        assert all(DOMAIN.tool_kind(r.name) is ToolKind.READ for r in bp.evidence())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blueprints_validate_and_replay_on_tau2_db(tau2_bases: dict[str, BaseDB], seed: int) -> None:
    _check_blueprints(tau2_bases["retail"], _blueprints(tau2_bases["retail"], seed, 150))


@pytest.mark.parametrize("seed", [0, 1])
def test_blueprints_validate_and_replay_on_generated_db(generated: BaseDB, seed: int) -> None:
    blueprints = _blueprints(generated, seed, 150)
    assert len(blueprints) > 60
    _check_blueprints(generated, blueprints)


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_evidence_and_facts_determine_every_argument(tau2_bases: dict[str, BaseDB]) -> None:
    """Each write argument is in a read's output (on the initial DB) or in what the user knows."""
    base = tau2_bases["retail"]
    for bp in _blueprints(base, 5, 150):
        state = base.new_state()
        seen = [DOMAIN.call(state, r.name, r.arguments).output for r in bp.evidence()]
        told = [k for i in bp.intents for k in i.facts.known] + bp.identity
        corpus = "\n".join(seen + told)
        for action in bp.actions():
            for name, value in action.arguments.items():
                for text in _strings(value):
                    assert text in corpus, (action.name, name, text, [i.rule for i in bp.intents])


def test_recipes_cover_every_write_tool_and_dependency(tau2_bases: dict[str, BaseDB]) -> None:
    blueprints = _blueprints(tau2_bases["retail"], 9, 500)
    tools = {a.name for bp in blueprints for a in bp.actions()}
    assert tools == WRITE_TOOLS
    rules = {part.split(":")[0] for bp in blueprints for i in bp.intents for part in i.rule.split("+")}
    expected = {
        "given", "contains_product", "contains_variant", "most_recent", "shipped_to_city", "highest_total",
        "lowest_total", "cheapest_item", "priciest_item", "all_items", "all_but", "same_but_option",
        "cheapest_with_option", "cheapest_variant", "exact_options", "original_method", "named_method",
        "same_order", "same_new_address", "default_address", "address_of_order",
    }  # fmt: skip
    assert expected <= rules, expected - rules
    pairs = Counter((bp.intents[d].kind, i.kind) for bp in blueprints for i in bp.intents for d in i.depends_on)
    assert ("modify_user_address", "modify_pending_order_address") in pairs
    assert ("modify_pending_order_address", "modify_pending_order_items") in pairs
    assert any(i.outputs for bp in blueprints for i in bp.intents)


def test_multi_cancel_writes_one_cancel_per_matching_order(tiny: BaseDB) -> None:
    """'Cancel every pending order that contains a kettle / a lamp': one intent, two writes."""
    recipe = SPEC.recipe("cancel_pending_orders")
    state = tiny.new_state()
    seen = {}
    for seed in range(8):
        intent = recipe.sample(SampleContext(state, "ann_lee_1", random.Random(seed), e_hint=7, w_left=2))
        assert isinstance(intent, Intent)
        orders = [a.arguments["order_id"] for a in intent.actions]
        assert orders == intent.params["orders"]
        assert len({r.key() for r in intent.reads}) == 7  # authentication, profile, five orders
        assert isinstance(validate(SPEC, tiny, Blueprint(domain="retail", user_id="ann_lee_1", intents=[intent])), str)
        seen[intent.rule_text] = orders
    assert seen == {
        "every pending order of yours that contains a kettle": ["#W1", "#W2"],
        "every pending order of yours that contains a lamp": ["#W2", "#W6"],
    }
    too_many = recipe.sample(SampleContext(state, "ann_lee_1", random.Random(0), e_hint=7, w_left=1))
    assert too_many == Reject("cancel_pending_orders: no product in several pending orders")


def test_same_seed_same_blueprints(tau2_bases: dict[str, BaseDB]) -> None:
    base = tau2_bases["retail"]
    first = [msgspec.json.encode(bp) for bp in _blueprints(base, 21, 60)]
    again = [msgspec.json.encode(bp) for bp in _blueprints(base, 21, 60)]
    assert first == again


def test_name_zip_users_authenticate_with_their_initial_zip(tau2_bases: dict[str, BaseDB]) -> None:
    """After a default-address change, the plan still authenticates with the zip the user started with."""
    base = tau2_bases["retail"]
    by_zip = [bp for bp in _blueprints(base, 3, 400) if bp.evidence()[0].name == "find_user_id_by_name_zip"]
    moved = [bp for bp in by_zip if any(i.kind == "modify_user_address" for i in bp.intents)]
    assert moved
    for bp in moved:
        assert bp.evidence()[0] == auth_read(base, bp.user_id)
        assert json.loads(json.dumps(bp.evidence()[0].arguments))["zip"] == base.tables["users"][bp.user_id].address.zip
