"""Built-in training text for the test tokenizer: service-desk prose, tool-call JSON, made-up words.

Nothing is downloaded or read from disk; the text is fixed, so the merges learned from it are too.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

__all__ = ["PROSE", "TOOL_JSON", "corpus_counts"]

PROSE = """\
Hello, thank you for contacting customer support. How can I help you today?
I would like to change my flight reservation, please. My reservation number is ZFA04Y.
Sure, I can help with that. Could you please tell me your user id and the name on the booking?
My user id is mia_li_3668 and the booking is for Mia Li, flying from New York to Seattle.
I found the reservation. The flight leaves on May 15 at 10:30 AM and arrives at 1:45 PM.
The cheapest one-stop flight on either day costs $149.99 in economy and $420.00 in business.
Do you want me to cancel the reservation, or change the cabin from economy to business?
Please note that basic economy flights cannot be modified after they are booked.
You can add up to three checked bags. The first bag is free for gold and silver members.
I'm sorry, but I cannot refund the ticket because the cancellation window has passed.
Before I make any change, please confirm with yes or no that you want to proceed.
Yes, please go ahead and book the new flight with the credit card on file.
The payment was charged to your gift card. Your remaining balance is $52.10.
I would like to return the red kettle and exchange the blue water bottle for a larger one.
Your order #W2378156 contains a mechanical keyboard, a desk lamp, and a pair of running shoes.
The order has been delivered, so I can process a return or an exchange for these items.
Which payment method would you like to use for the refund: the original card or a gift card?
I have updated the shipping address to 123 Main Street, Apt 4B, Springfield, IL 62704.
The item is out of stock in that color, but it is available in black, white, and green.
Is there anything else I can help you with? Thank you for your patience, have a great day.
I need to transfer you to a human agent, because this request is outside of my policy.
The passenger details are: first name Noah, last name Brown, date of birth 1990-04-12.
You have two reservations: one departs on 2024-05-20 and the other on 2024-06-02.
The reservation with the earliest departure is the one to Boston, booked in economy class.
The total price is the sum of the fares of every flight segment times the number of passengers.
Travel insurance costs $30 per passenger and covers cancellation for health or weather reasons.
Let me look up the flight status first. The flight HAT170 is on time and has seats available.
We can offer a certificate of $100 as a gesture of goodwill for the delayed flight.
The product options are size, color, material, and capacity; each variant has its own item id.
Your account shows a PayPal account, a Visa credit card ending in 4242, and a gift card.
Please wait while I check the details of your order. It was placed on Tuesday evening.
If you change your mind, tell me before I submit the request, because it cannot be undone.
The agent must not make up any information, and must follow the policy in every step.
"""

TOOL_JSON = """\
{"name": "get_user_details", "arguments": {"user_id": "mia_li_3668"}}
{"name": "get_reservation_details", "arguments": {"reservation_id": "ZFA04Y"}}
{"name": "search_direct_flight", "arguments": {"origin": "JFK", "destination": "SEA", \
"date": "2024-05-15"}}
{"name": "update_reservation_flights", "arguments": {"reservation_id": "ZFA04Y", \
"cabin": "economy", "flights": [{"flight_number": "HAT170", "date": "2024-05-15"}], \
"payment_id": "credit_card_4421486"}}
{"name": "update_reservation_baggages", "arguments": {"reservation_id": "ZFA04Y", \
"total_baggages": 2, "nonfree_baggages": 0, "payment_id": "gift_card_7219486"}}
{"name": "cancel_reservation", "arguments": {"reservation_id": "ZFA04Y"}}
{"name": "get_order_details", "arguments": {"order_id": "#W2378156"}}
{"name": "return_delivered_order_items", "arguments": {"order_id": "#W2378156", \
"item_ids": ["1151293680", "4983901480"], "payment_method_id": "paypal_7644869"}}
{"name": "exchange_delivered_order_items", "arguments": {"order_id": "#W2378156", \
"item_ids": ["1151293680"], "new_item_ids": ["7706410293"], \
"payment_method_id": "gift_card_7219486"}}
{"name": "modify_pending_order_address", "arguments": {"order_id": "#W4817420", \
"address1": "123 Main Street", "address2": "Apt 4B", "city": "Springfield", "state": "IL", \
"country": "USA", "zip": "62704"}}
{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Noah", \
"last_name": "Brown", "zip": "62704"}}
{"name": "transfer_to_human_agents", "arguments": {"summary": "The user wants a refund."}}
{"type": "function", "function": {"name": "get_product_details", \
"description": "Get the inventory details of a product.", "parameters": {"type": "object", \
"properties": {"product_id": {"type": "string", "description": "The product id, \
such as '6086499569'."}}, "required": ["product_id"], "additionalProperties": false}}}
{"type": "function", "function": {"name": "calculate", \
"description": "Calculate the result of a mathematical expression.", \
"parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, \
"required": ["expression"]}}}
{"status": "delivered", "items": [{"name": "Water Bottle", "price": 52.1, \
"options": {"color": "red", "capacity": "750ml"}}], \
"payment_history": [{"transaction_type": "payment", "amount": 149.99}]}
"""

_ONSETS = (
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "qu",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "pr",
    "sh",
    "st",
    "th",
    "tr",
    "",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "oo", "y")
_CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "st", "ck", "rt", "x")


def _made_up_words(count: int) -> Iterator[str]:
    """Yield pronounceable made-up words from a fixed generator, so late merges look like words."""
    rng = random.Random(20240515)
    for _ in range(count):
        n_syllables = rng.choice((1, 2, 2, 3, 3, 4))
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n_syllables))
        form = rng.random()
        if form < 0.15:
            word = word.capitalize()
        elif form < 0.2:
            word = word + "_" + str(rng.randrange(100))
        elif form < 0.25:
            word = str(rng.randrange(1000))
        yield (" " if rng.random() < 0.8 else "") + word


def corpus_counts(split: Callable[[str], list[str]], made_up: int) -> Counter[str]:
    """Count the corpus pre-tokens: the fixed text weighted heavily, then ``made_up`` words."""
    counts: Counter[str] = Counter()
    for piece in split(PROSE) + split(TOOL_JSON):
        counts[piece] += 40
    for word in _made_up_words(made_up):
        for piece in split(word):
            counts[piece] += 1
    return counts
