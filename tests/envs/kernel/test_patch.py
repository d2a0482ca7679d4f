"""Record patches: unpacking a packed change gives back exactly the changed record."""

from __future__ import annotations

import msgspec

from envs.airline.schema import Certificate, Reservation, User
from envs.kernel.patch import RecordCodec
from envs.retail.schema import Order, OrderPayment

ENC = msgspec.msgpack.Encoder()


def _same(a: object, b: object) -> bool:
    """Equal values and equal dict orders (the encodings match byte for byte)."""
    return ENC.encode(a) == ENC.encode(b)


def test_dict_entries_lists_and_scalars_round_trip(tau2_bases: dict) -> None:
    base = tau2_bases["airline"]
    codec = RecordCodec(User)
    original = next(u for u in base.tables["users"].values() if len(u.payment_methods) > 2)
    changed = codec.copy(original)
    first = next(iter(changed.payment_methods))
    del changed.payment_methods[first]
    changed.payment_methods["certificate_3221322"] = Certificate(id="certificate_3221322", amount=50.0)
    changed.reservations.append("HATHAT")
    changed.membership = "gold"
    data = codec.pack(original, changed)
    assert len(data) < len(ENC.encode(changed)) / 2
    assert _same(codec.unpack(original, data), changed)
    assert _same(original, base.tables["users"][original.user_id])  # the base is untouched


def test_reordered_dict_is_stored_whole_and_keeps_its_order(tau2_bases: dict) -> None:
    codec = RecordCodec(User)
    original = next(u for u in tau2_bases["airline"].tables["users"].values() if len(u.payment_methods) > 1)
    changed = codec.copy(original)
    changed.payment_methods = dict(reversed(list(changed.payment_methods.items())))
    assert _same(codec.unpack(original, codec.pack(original, changed)), changed)


def test_list_positions_and_new_records(tau2_bases: dict) -> None:
    codec = RecordCodec(Order)
    original = next(o for o in tau2_bases["retail"].tables["orders"].values() if len(o.items) > 1)
    changed = codec.copy(original)
    changed.items[1].price = 1.25
    changed.payment_history.append(
        OrderPayment(transaction_type="refund", amount=3.5, payment_method_id="gift_card_1")
    )
    changed.status = "cancelled"
    assert _same(codec.unpack(original, codec.pack(original, changed)), changed)
    shorter = codec.copy(original)
    shorter.items.pop()
    assert _same(codec.unpack(original, codec.pack(original, shorter)), shorter)
    fresh = RecordCodec(Reservation)
    reservation = next(iter(tau2_bases["airline"].tables["reservations"].values()))
    assert _same(fresh.unpack(None, fresh.pack(None, reservation)), reservation)
