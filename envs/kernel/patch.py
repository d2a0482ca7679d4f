"""Compact storage of a changed record as a field-level patch against its base version.

A conversation that cancels one order should not hold a copy of the whole order: it keeps only
the fields that differ from the shared base; for a dict field only the entries that differ, for
a list field only the appended tail or the changed positions. Unpacking copies the base record
and applies the patch, giving a fresh object.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, get_args, get_origin, get_type_hints

import msgspec

__all__ = ["RecordCodec"]

_encoder = msgspec.msgpack.Encoder()
_FULL = b"F"
_PATCH = b"P"
_WHOLE, _ENTRIES, _APPENDED, _ELEMENTS = 0, 1, 2, 3


class _Entry(msgspec.Struct, array_like=True):
    field: str
    kind: int
    value: msgspec.Raw
    removed: list[str]


class RecordCodec:
    """Packs records of one Struct type as patches against base records, and unpacks them."""

    def __init__(self, record_type: type[msgspec.Struct]) -> None:
        self.record_type = record_type
        self.fields: tuple[str, ...] = record_type.__struct_fields__
        hints = get_type_hints(record_type)
        self._record = msgspec.msgpack.Decoder(record_type)
        self._whole = {f: msgspec.msgpack.Decoder(hints[f]) for f in self.fields}
        self._entries = {
            f: msgspec.msgpack.Decoder(dict[str, get_args(hints[f])[1]])  # type: ignore[valid-type]
            for f in self.fields
            if get_origin(hints[f]) is dict
        }
        self._tails = {
            f: msgspec.msgpack.Decoder(hints[f]) for f in self.fields if get_origin(hints[f]) is list
        }
        self._elements = {
            f: msgspec.msgpack.Decoder(dict[int, get_args(hints[f])[0]])  # type: ignore[valid-type]
            for f in self._tails
        }
        self._patch = msgspec.msgpack.Decoder(list[_Entry])
        getter = attrgetter(*self.fields)
        self._values: Any = getter if len(self.fields) > 1 else (lambda r: (getter(r),))

    def copy(self, record: Any) -> Any:
        """A deep copy of a record."""
        return self._record.decode(_encoder.encode(record))

    def values(self, record: Any) -> tuple[Any, ...]:
        """The record's field values, in declaration order."""
        return self._values(record)

    def encode_fields(self, record: Any) -> tuple[bytes, ...]:
        """Each field of ``record`` encoded on its own, in declaration order (to compare against)."""
        return tuple(map(_encoder.encode, self._values(record)))

    def pack(
        self,
        base: Any | None,
        record: Any,
        base_fields: tuple[bytes, ...] | None = None,
        same: list[bool] | None = None,
    ) -> bytes:
        """``record`` as bytes: a patch against ``base``, or the whole record when there is none.

        ``base_fields`` (``encode_fields(base)``, cached by the caller) lets each field be encoded
        once and compared as bytes instead of compared deeply and encoded twice. ``same``, when
        given, receives one flag per field: whether it is identical to the base's.
        """
        if base is None:
            return _FULL + _encoder.encode(record)
        # 1) which fields changed: each field encoded once (in C, via map) and compared as bytes
        values = self._values(record)
        if base_fields is None:
            encoded: list[bytes | None] = [None] * len(values)
            flags = [_identical(o, n) for o, n in zip(self._values(base), values, strict=True)]
        else:
            encoded = list(map(_encoder.encode, values))  # type: ignore[arg-type]
            flags = list(map(bytes.__eq__, encoded, base_fields))  # type: ignore[arg-type]
        if same is not None:
            same.extend(flags)
        # 2) a patch entry per changed field
        entries = []
        for i, unchanged in enumerate(flags):
            if unchanged:
                continue
            name = self.fields[i]
            new = values[i]
            old = getattr(base, name)
            if name in self._entries and _same_order(old, new):
                changed = {k: v for k, v in new.items() if k not in old or not _identical(old[k], v)}
                removed = [k for k in old if k not in new]
                entries.append((name, _ENTRIES, changed, removed))
            elif name in self._tails and len(new) > len(old) and _identical(new[: len(old)], old):
                entries.append((name, _APPENDED, new[len(old) :], []))
            elif name in self._tails and len(new) == len(old):
                pairs = enumerate(zip(old, new, strict=True))
                changed_at = {j: v for j, (o, v) in pairs if not _identical(o, v)}
                entries.append((name, _ELEMENTS, changed_at, []))
            else:
                raw = encoded[i]
                entries.append((name, _WHOLE, new if raw is None else msgspec.Raw(raw), []))
        return _PATCH + _encoder.encode(entries)

    def decode(self, data: bytes) -> Any:
        """A record from its msgpack encoding."""
        return self._record.decode(data)

    def unpack(self, base: Any | None, data: bytes, base_bytes: bytes | None = None) -> Any:
        """A fresh record object from ``pack`` output and the same ``base``.

        ``base_bytes`` (the base record encoded, cached by the caller) saves encoding it again.
        """
        view = memoryview(data)[1:]
        if data[:1] == _FULL:
            return self._record.decode(view)
        record = self.copy(base) if base_bytes is None else self._record.decode(base_bytes)
        for entry in self._patch.decode(view):
            if entry.kind == _WHOLE:
                setattr(record, entry.field, self._whole[entry.field].decode(entry.value))
                continue
            target = getattr(record, entry.field)
            if entry.kind == _ENTRIES:
                for key in entry.removed:
                    del target[key]
                target.update(self._entries[entry.field].decode(entry.value))
            elif entry.kind == _APPENDED:
                target.extend(self._tails[entry.field].decode(entry.value))
            else:
                for index, value in self._elements[entry.field].decode(entry.value).items():
                    target[index] = value
        return record


def _identical(a: Any, b: Any) -> bool:
    """Equal, including the key order of every dict inside (what tool outputs show)."""
    return a is b or (a == b and _encoder.encode(a) == _encoder.encode(b))


def _same_order(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` keeps ``old``'s key order, with added keys only at the end."""
    kept = [k for k in old if k in new]
    return list(new) == kept + [k for k in new if k not in old]
