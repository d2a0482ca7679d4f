"""Tool declarations: tau2-bench's names and parameters, schemas, argument errors, calculate."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs import get_domain
from envs.airline.schema import AirlineDB
from envs.kernel import BoundCall, CallResult, Outcome, ToolKind

# tau2-bench's agent tools and their parameters (facts from its domains/<d>/tools.py).
TAU2_TOOLS = {
    "airline": {
        "book_reservation": ["user_id", "origin", "destination", "flight_type", "cabin", "flights",
                             "passengers", "payment_methods", "total_baggages", "nonfree_baggages",
                             "insurance"],
        "calculate": ["expression"],
        "cancel_reservation": ["reservation_id"],
        "get_reservation_details": ["reservation_id"],
        "get_user_details": ["user_id"],
        "list_all_airports": [],
        "search_direct_flight": ["origin", "destination", "date"],
        "search_onestop_flight": ["origin", "destination", "date"],
        "send_certificate": ["user_id", "amount"],
        "transfer_to_human_agents": ["summary"],
        "update_reservation_baggages": ["reservation_id", "total_baggages", "nonfree_baggages",
                                        "payment_id"],
        "update_reservation_flights": ["reservation_id", "cabin", "flights", "payment_id"],
        "update_reservation_passengers": ["reservation_id", "passengers"],
        "get_flight_status": ["flight_number", "date"],
    },
    "retail": {
        "calculate": ["expression"],
        "cancel_pending_order": ["order_id", "reason"],
        "exchange_delivered_order_items": ["order_id", "item_ids", "new_item_ids", "payment_method_id"],
        "find_user_id_by_name_zip": ["first_name", "last_name", "zip"],
        "find_user_id_by_email": ["email"],
        "get_order_details": ["order_id"],
        "get_product_details": ["product_id"],
        "get_item_details": ["item_id"],
        "get_user_details": ["user_id"],
        "list_all_product_types": [],
        "modify_pending_order_address": ["order_id", "address1", "address2", "city", "state",
                                         "country", "zip"],
        "modify_pending_order_items": ["order_id", "item_ids", "new_item_ids", "payment_method_id"],
        "modify_pending_order_payment": ["order_id", "payment_method_id"],
        "modify_user_address": ["user_id", "address1", "address2", "city", "state", "country", "zip"],
        "return_delivered_order_items": ["order_id", "item_ids", "payment_method_id"],
        "transfer_to_human_agents": ["summary"],
    },
}  # fmt: skip
WRITES = {
    "airline": {"book_reservation", "cancel_reservation", "send_certificate",
                "update_reservation_baggages", "update_reservation_flights",
                "update_reservation_passengers"},
    "retail": {"cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
               "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
               "return_delivered_order_items"},
}  # fmt: skip


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_tools_have_tau2_names_parameters_and_kinds(domain: str) -> None:
    dom = get_domain(domain)
    assert {n: list(t.param_names) for n, t in dom.tools.items()} == TAU2_TOOLS[domain]
    assert {n for n, t in dom.tools.items() if t.kind is ToolKind.WRITE} == WRITES[domain]
    for schema in dom.openai_tools():
        fn = schema["function"]
        assert schema["type"] == "function" and fn["description"]
        params = fn["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert list(params["properties"]) == TAU2_TOOLS[domain][fn["name"]]
        assert params["required"] == TAU2_TOOLS[domain][fn["name"]]


def test_nested_argument_schemas_are_closed_objects() -> None:
    params = get_domain("airline").tools["book_reservation"].parameters["properties"]
    flights = params["flights"]
    assert flights["type"] == "array"
    assert flights["items"]["required"] == ["flight_number", "date"]
    assert flights["items"]["additionalProperties"] is False
    assert params["cabin"]["enum"] == ["business", "economy", "basic_economy"]
    assert params["total_baggages"]["type"] == "integer"


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("no_such_tool", "{}", "Tool 'no_such_tool' not found."),
        ("get_user_details", "{}",
         "AirlineTools.get_user_details() missing 1 required positional argument: 'user_id'"),
        ("search_direct_flight", '{"date": "2024-05-01"}',
         "AirlineTools.search_direct_flight() missing 2 required positional arguments: "
         "'origin' and 'destination'"),
        ("get_user_details", '{"user_id": "a", "extra": 1}',
         "AirlineTools.get_user_details() got an unexpected keyword argument 'extra'"),
        ("get_user_details", '{"user_id": 7}', "Expected `str`, got `int` - at `$.user_id`"),
        ("cancel_reservation", "[1]", "tool arguments must be a JSON object, got list"),
        ("send_certificate", '{"user_id": "a", "amount": 12.5}',
         "Expected `int`, got `float` - at `$.amount`"),
        ("update_reservation_flights",
         '{"reservation_id": "X", "cabin": "first", "flights": [], "payment_id": "p"}',
         "Invalid enum value 'first' - at `$.cabin`"),
    ],
)  # fmt: skip
def test_bad_arguments_get_one_line_errors(name: str, arguments: str, error: str) -> None:
    dom = get_domain("airline")
    assert dom.bind(name, arguments).text == error
    assert "\n" not in error


def test_bad_json_is_reported_not_raised() -> None:
    result = get_domain("retail").bind("get_order_details", b'{"order_id": ')
    assert isinstance(result, CallResult) and result.outcome is Outcome.BAD_CALL
    assert result.text.startswith("tool arguments are not valid JSON")
    assert result.output == f"Error: {result.text}"


def test_valid_arguments_validate() -> None:
    dom = get_domain("retail")
    assert isinstance(dom.bind("get_order_details", '{"order_id": "#W1"}'), BoundCall)
    assert isinstance(dom.bind("get_order_details", {"order_id": "#W1"}), BoundCall)


def _tau2_calculate(expression: str) -> str:
    """tau2-bench's calculate, as its tools.py defines it (eval on a restricted alphabet)."""
    try:
        if not all(char in "0123456789+-*/(). " for char in expression):
            raise ValueError("Invalid characters in expression")
        with warnings.catch_warnings():  # eval may warn ("perhaps you missed a comma?")
            warnings.simplefilter("ignore")
            value = eval(expression, {"__builtins__": None}, {})
        return str(round(float(value), 2))
    except Exception as exc:
        return f"Error: {exc}"


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789+-*/(). ", min_size=1, max_size=14))
def test_calculate_matches_tau2_on_arithmetic(expression: str) -> None:
    expected = _tau2_calculate(expression)
    if "**" in expression:
        return  # the exponent guard is where we deliberately differ (no unbounded powers)
    dom = get_domain("airline")
    state = dom.from_struct(AirlineDB(flights={}, users={}, reservations={})).new_state()
    assert dom.call(state, "calculate", {"expression": expression}, strict=True).output == expected
