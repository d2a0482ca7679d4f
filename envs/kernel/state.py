"""Copy-on-write conversation state over one shared base DB, with an incremental state hash.

A ``BaseDB`` holds the loaded database, never mutated after load. Each conversation gets a
``State``: an overlay of only the records it changed. Writes happen inside a call transaction:
the first write to a record in a call copies it into the overlay and journals what was there,
so a refused call rolls back exactly. The state hash is a sum of per-record digests modulo 2**128,
so it is independent of the order of writes and costs time proportional to changed records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

import msgspec

if TYPE_CHECKING:
    from envs.kernel.domain import Domain

__all__ = ["BaseDB", "State"]

_MASK = (1 << 128) - 1
_MISSING: Any = object()
_digest_encoder = msgspec.msgpack.Encoder(order="sorted")
_copy_encoder = msgspec.msgpack.Encoder()


def record_digest(table: str, key: str, record: Any) -> int:
    """The 128-bit digest of one record, independent of dict key order inside it."""
    data = _digest_encoder.encode((table, key, record))
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "little")


class BaseDB:
    """The immutable, shared database of one domain, with lazily built caches and indexes."""

    def __init__(self, domain: Domain, db: msgspec.Struct) -> None:
        self.domain = domain
        self.db = db
        self.table_names: tuple[str, ...] = type(db).__struct_fields__
        self.tables: dict[str, dict[str, Any]] = {t: getattr(db, t) for t in self.table_names}
        hints = get_type_hints(type(db))
        self.record_types: dict[str, type] = {t: get_args(hints[t])[1] for t in self.table_names}
        self._copy_decoders = {
            t: msgspec.msgpack.Decoder(rt) for t, rt in self.record_types.items()
        }
        self._digests: dict[tuple[str, str], int] = {}
        self._sum: int | None = None
        self.fragments: dict[tuple[str, str], str] = {}
        self.indexes: dict[str, Any] = {}

    def copy_record(self, table: str, record: Any) -> Any:
        """A deep copy of one record (msgpack round trip: no shared mutable parts)."""
        return self._copy_decoders[table].decode(_copy_encoder.encode(record))

    def digest(self, table: str, key: str) -> int:
        """The digest of a base record, 0 for a key the base does not hold."""
        cached = self._digests.get((table, key))
        if cached is None:
            record = self.tables[table].get(key)
            cached = 0 if record is None else record_digest(table, key, record)
            self._digests[(table, key)] = cached
        return cached

    def base_sum(self) -> int:
        """The state hash of the untouched base (computed once, then cached)."""
        if self._sum is None:
            total = 0
            for table, records in self.tables.items():
                for key in records:
                    total += self.digest(table, key)
            self._sum = total & _MASK
        return self._sum

    def new_state(self) -> State:
        """A fresh conversation state: an empty overlay over this base."""
        return State(self)

    def index(self, name: str, build: Any) -> Any:
        """A named index over the base, built once by ``build(base)`` on first use."""
        value = self.indexes.get(name)
        if value is None:
            value = build(self)
            self.indexes[name] = value
        return value


class State:
    """One conversation's view of the DB: base records plus its own copied-on-write records."""

    __slots__ = ("_delta", "_dirty", "_journal", "_new_keys", "_odigests", "base", "overlay")

    def __init__(self, base: BaseDB) -> None:
        self.base = base
        self.overlay: dict[str, dict[str, Any]] = {t: {} for t in base.table_names}
        self._new_keys: dict[str, list[str]] = {t: [] for t in base.table_names}
        self._journal: dict[tuple[str, str], Any] | None = None
        self._dirty: set[tuple[str, str]] = set()
        self._odigests: dict[tuple[str, str], int] = {}
        self._delta = 0

    # -- reads -------------------------------------------------------------------------------
    def get(self, table: str, key: str) -> Any:
        """The visible record, or None. Never mutate what this returns: use ``mut``."""
        record = self.overlay[table].get(key)
        if record is None:
            return self.base.tables[table].get(key)
        return record

    def contains(self, table: str, key: str) -> bool:
        """Whether the record exists in this state."""
        return key in self.overlay[table] or key in self.base.tables[table]

    def keys(self, table: str) -> Iterator[str]:
        """Visible keys in DB order: base order first, then records added by this state."""
        yield from self.base.tables[table]
        yield from self._new_keys[table]

    def items(self, table: str) -> Iterator[tuple[str, Any]]:
        """Visible (key, record) pairs in DB order."""
        overlay = self.overlay[table]
        for key, record in self.base.tables[table].items():
            yield key, overlay.get(key, record)
        for key in self._new_keys[table]:
            yield key, overlay[key]

    def size(self, table: str) -> int:
        """Number of visible records in a table."""
        return len(self.base.tables[table]) + len(self._new_keys[table])

    # -- writes ------------------------------------------------------------------------------
    def mut(self, table: str, key: str) -> Any:
        """A private, mutable copy of a record (KeyError if it does not exist)."""
        overlay = self.overlay[table]
        journal = self._journal
        slot = (table, key)
        if journal is not None:
            if slot in journal:
                return overlay[key]
            previous = overlay.get(key, _MISSING)
            source = self.base.tables[table][key] if previous is _MISSING else previous
            journal[slot] = previous
        else:
            if key in overlay:
                self._dirty.add(slot)
                return overlay[key]
            source = self.base.tables[table][key]
            self._dirty.add(slot)
        record = self.base.copy_record(table, source)
        overlay[key] = record
        return record

    def insert(self, table: str, key: str, record: Any) -> None:
        """Add a new record (the key must not exist yet)."""
        if self.contains(table, key):
            raise KeyError(f"{table} {key} already exists")
        slot = (table, key)
        if self._journal is not None:
            self._journal[slot] = _MISSING
        else:
            self._dirty.add(slot)
        self.overlay[table][key] = record
        self._new_keys[table].append(key)

    # -- call transactions ---------------------------------------------------------------------
    def begin(self) -> None:
        """Start a call: writes from now on are journaled until commit or rollback."""
        self._journal = {}

    def commit(self) -> None:
        """Keep the call's writes."""
        journal = self._journal
        self._journal = None
        if journal:
            self._dirty.update(journal)

    def rollback(self) -> None:
        """Undo every write made since ``begin``."""
        journal = self._journal
        self._journal = None
        if not journal:
            return
        for (table, key), previous in journal.items():
            overlay = self.overlay[table]
            if previous is _MISSING:
                overlay.pop(key, None)
                if key not in self.base.tables[table] and key in self._new_keys[table]:
                    self._new_keys[table].remove(key)
            else:
                overlay[key] = previous

    # -- hashing -------------------------------------------------------------------------------
    def hash(self) -> int:
        """The order-independent 128-bit state hash, updated only for records changed since."""
        if self._dirty:
            base = self.base
            for slot in self._dirty:
                table, key = slot
                record = self.overlay[table].get(key)
                new = 0 if record is None else record_digest(table, key, record)
                old = self._odigests.get(slot)
                if old is None:
                    old = base.digest(table, key)
                self._delta += new - old
                self._odigests[slot] = new
            self._dirty.clear()
        return (self.base.base_sum() + self._delta) & _MASK

    def hash_hex(self) -> str:
        """``hash()`` as 32 hex digits."""
        return f"{self.hash():032x}"

    def changed(self) -> dict[str, list[str]]:
        """Keys of the records this state holds copies of, per table."""
        return {t: list(o) for t, o in self.overlay.items() if o}

    # -- materialization and snapshots --------------------------------------------------------------
    def materialize(self) -> msgspec.Struct:
        """A full, independent copy of the DB as this state sees it."""
        base = self.base
        tables = {
            t: {k: base.copy_record(t, r) for k, r in self.items(t)} for t in base.table_names
        }
        return type(base.db)(**tables)

    def snapshot(self) -> bytes:
        """The overlay as msgpack bytes, restorable over the same base with ``restore``."""
        return _copy_encoder.encode(
            {t: [[k, rec] for k, rec in self.overlay[t].items()] for t in self.base.table_names}
        )

    @classmethod
    def restore(cls, base: BaseDB, data: bytes) -> State:
        """Rebuild a state from ``snapshot()`` bytes over ``base``."""
        raw = msgspec.msgpack.decode(data, type=dict[str, list[tuple[str, msgspec.Raw]]])
        state = cls(base)
        for table, pairs in raw.items():
            decoder = base._copy_decoders[table]
            for key, blob in pairs:
                record = decoder.decode(blob)
                state.overlay[table][key] = record
                if key not in base.tables[table]:
                    state._new_keys[table].append(key)
                state._dirty.add((table, key))
        return state
