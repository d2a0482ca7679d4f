"""Copy-on-write conversation state over one shared base DB, with an incremental state hash.

A ``BaseDB`` holds the loaded database, never mutated after load; the kernel's caches over it
(encodings, digests, rendered outputs) are its ``BaseCache``. Each conversation gets a
``State``: an overlay of only the records it changed. Writes happen inside a call transaction:
the first write to a record in a call copies it into the overlay and journals what was there,
so a refused call rolls back exactly. A committed record stays a live object until the state is
hashed, snapshotted or packed, and is then stored as a compact patch against its base record.
The state hash is a sum of per-record digests modulo 2**128, so it is independent of the order
of writes and costs time proportional to changed records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, get_args, get_type_hints

import msgspec

from envs.kernel.dump import tool_output
from envs.kernel.index import Index
from envs.kernel.patch import RecordCodec

__all__ = ["BaseCache", "BaseDB", "State", "StateError", "cache_of"]

_MASK = (1 << 128) - 1
_NOTHING: Any = object()  # commit() renders nothing
_digest_encoder = msgspec.msgpack.Encoder(order="sorted")
_copy_encoder = msgspec.msgpack.Encoder()


class StateError(ValueError):
    """A call's writes hold a value no record can store; the call is rolled back. One line."""


def record_digest(table: str, key: str, record: Any) -> int:
    """The 128-bit digest of one record, independent of dict key order inside it."""
    data = _digest_encoder.encode((table, key, record))
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "little")


class BaseDB:
    """The immutable, shared database of one domain: the loaded DB and its tables, nothing else.

    It holds no caches and does not know its domain: the kernel keeps its caches of a base in a
    ``BaseCache`` (``cache_of``), and lookups derived from it live in ``envs.kernel.index.Index``.
    """

    def __init__(self, db: msgspec.Struct) -> None:
        self.db = db
        self.table_names: tuple[str, ...] = type(db).__struct_fields__
        self.tables: dict[str, dict[str, Any]] = {t: getattr(db, t) for t in self.table_names}
        hints = get_type_hints(type(db))
        self.record_types: dict[str, type] = {t: get_args(hints[t])[1] for t in self.table_names}

    def base_sum(self) -> int:
        """The state hash of the untouched base."""
        return cache_of(self).base_sum()

    def new_state(self) -> State:
        """A fresh conversation state: an empty overlay over this base."""
        return State(self)


class BaseCache:
    """The kernel's caches over one base DB, built as calls need them: each base record's encoding
    (what private copies and patches start from), its digest, its rendered tool output, and the
    record codecs. A base never changes, so nothing here is ever invalidated; ``cache_of(base)``
    finds a base's one cache."""

    def __init__(self, base: BaseDB) -> None:
        self.tables = base.tables
        self.codecs = {t: RecordCodec(rt) for t, rt in base.record_types.items()}
        self.decoders = {t: msgspec.msgpack.Decoder(rt) for t, rt in base.record_types.items()}
        self._digests: dict[tuple[str, str], int] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._fields: dict[tuple[str, str], tuple[bytes, ...]] = {}
        self._sum: int | None = None
        self._record_ids: set[int] | None = None
        self._rendered: dict[int, tuple[Any, str]] = {}
        self.fragments: dict[tuple[str, str], str] = {}
        """tau2's JSON text of each base record, as ``tau2_db_json`` writes it."""

    def copy_record(self, table: str, record: Any) -> Any:
        """A deep copy of one record (msgpack round trip: no shared mutable parts)."""
        return self.codecs[table].copy(record)

    def _base_bytes(self, table: str, key: str) -> bytes:
        """A base record encoded (cached): what copies of it are decoded from."""
        slot = (table, key)
        data = self._encoded.get(slot)
        if data is None:
            data = self._encoded[slot] = _copy_encoder.encode(self.tables[table][key])
        return data

    def copy_base(self, table: str, key: str) -> Any:
        """A fresh, private copy of a base record (one decode of its cached encoding)."""
        data = self._encoded.get((table, key))
        if data is None:
            data = self._base_bytes(table, key)
        return self.decoders[table].decode(data)

    def pack(self, table: str, key: str, record: Any, same: list[bool] | None = None) -> bytes:
        """A changed record as compact bytes: a patch against its base version. ``same`` receives
        a flag per field (unchanged from the base?), left empty for a record the base lacks."""
        codec = self.codecs[table]
        base = self.tables[table].get(key)
        if base is None:
            return codec.pack(None, record)
        fields = self._fields.get((table, key))
        if fields is None:
            fields = self._fields[(table, key)] = codec.encode_fields(base)
        return codec.pack(base, record, fields, same)

    def unpack(self, table: str, key: str, data: bytes) -> Any:
        """A fresh record object from ``pack`` output."""
        base = self.tables[table].get(key)
        if base is None:
            return self.codecs[table].unpack(None, data)
        return self.codecs[table].unpack(base, data, self._base_bytes(table, key))

    def digest(self, table: str, key: str) -> int:
        """The digest of a base record, 0 for a key the base does not hold."""
        cached = self._digests.get((table, key))
        if cached is None:
            record = self.tables[table].get(key)
            cached = 0 if record is None else record_digest(table, key, record)
            self._digests[(table, key)] = cached
        return cached

    def render(self, value: Any) -> str:
        """``tool_output(value)``; a base record's text is rendered once and kept (base records never change)."""
        hit = self._rendered.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = tool_output(value)
        ids = self._record_ids
        if ids is None:
            ids = self._record_ids = {id(r) for records in self.tables.values() for r in records.values()}
        if id(value) in ids:
            self._rendered[id(value)] = (value, text)
        return text

    def base_sum(self) -> int:
        """The state hash of the untouched base (computed once, then kept)."""
        if self._sum is None:
            total = 0
            for table, records in self.tables.items():
                for key in records:
                    total += self.digest(table, key)
            self._sum = total & _MASK
        return self._sum


_CACHES: Index[BaseCache] = Index("kernel.base_cache", BaseCache)


def cache_of(base: BaseDB) -> BaseCache:
    """The kernel's caches over ``base`` (made on first use, kept while the base lives)."""
    return _CACHES.of(base)


class State:
    """One conversation's view of the DB: base records plus its own copied-on-write records.

    Records changed by calls are kept as live objects until the state is hashed, snapshotted or
    packed (``pack``), then as msgpack patches against their base records (compact; decoded on
    access). Writes (``mut``, ``insert``) happen only between ``begin`` and ``commit``/``rollback``;
    ``Domain.call`` brackets every tool call.
    """

    __slots__ = ("_cache", "_copies", "_journal", "_new", "_records", "_seen", "base")

    def __init__(self, base: BaseDB) -> None:
        self.base = base
        self._cache = cache_of(base)
        self._records: dict[tuple[str, str], Any] = {}  # live record, or pack() bytes
        self._new: dict[str, list[str]] | None = None
        self._journal: dict[tuple[str, str], Any] | None = None
        self._seen: dict[tuple[str, str], Any] | None = None  # records decoded in the current call
        self._copies: dict[tuple[str, str], bytes] | None = None  # live records' msgpack (from commit)

    # -- reads -------------------------------------------------------------------------------
    def get(self, table: str, key: str) -> Any:
        """The visible record, or None. Never mutate what this returns: use ``mut``."""
        if self._records:
            value = self._records.get((table, key))
            if value is not None:
                if type(value) is not bytes:
                    return value
                seen = self._seen
                if seen is None:  # outside a call
                    return self._cache.unpack(table, key, value)
                record = seen.get((table, key))
                if record is None:  # decoded once per call, however often the tool reads it
                    record = seen[(table, key)] = self._cache.unpack(table, key, value)
                return record
        return self.base.tables[table].get(key)

    def contains(self, table: str, key: str) -> bool:
        """Whether the record exists in this state."""
        return key in self.base.tables[table] or (table, key) in self._records

    def is_changed(self, table: str, key: str) -> bool:
        """Whether this state holds its own version of the record."""
        return (table, key) in self._records

    def added(self, table: str) -> list[str]:
        """Keys of records this state added to a table, in insertion order."""
        return list(self._new.get(table, ())) if self._new else []

    def keys(self, table: str) -> Iterator[str]:
        """Visible keys in DB order: base order first, then records added by this state."""
        yield from self.base.tables[table]
        if self._new:
            yield from self._new.get(table, ())

    def items(self, table: str) -> Iterator[tuple[str, Any]]:
        """Visible (key, record) pairs in DB order."""
        records = self._records
        for key, record in self.base.tables[table].items():
            yield key, (self.get(table, key) if records and (table, key) in records else record)
        for key in self.added(table):
            yield key, self.get(table, key)

    def size(self, table: str) -> int:
        """Number of visible records in a table."""
        return len(self.base.tables[table]) + len(self.added(table))

    # -- writes (inside a call) ------------------------------------------------------------------
    def mut(self, table: str, key: str) -> Any:
        """A private, mutable copy of a record (KeyError if it does not exist)."""
        journal = self._journal
        if journal is None:
            raise RuntimeError("State.mut outside a call: wrap writes in begin()/commit()")
        slot = (table, key)
        records = self._records
        if slot in journal:
            return records[slot]
        previous = records.get(slot)
        if previous is None:
            record = self._cache.copy_base(table, key)
        elif type(previous) is bytes:
            record = self._cache.unpack(table, key, previous)
        else:  # live from an earlier call: the journal keeps it as it was
            data = self._copies.get(slot) if self._copies else None
            if data is None:
                record = self._cache.codecs[table].copy(previous)
            else:  # decoded from the bytes its commit checked it with: no second encode
                record = self._cache.decoders[table].decode(data)
        journal[slot] = previous
        records[slot] = record
        return record

    def insert(self, table: str, key: str, record: Any) -> None:
        """Add a new record (the key must not exist yet)."""
        if self._journal is None:
            raise RuntimeError("State.insert outside a call: wrap writes in begin()/commit()")
        if self.contains(table, key):
            raise KeyError(f"{table} {key} already exists")
        slot = (table, key)
        self._journal[slot] = None
        self._records[slot] = record
        if self._new is None:
            self._new = {}
        self._new.setdefault(table, []).append(key)

    # -- call transactions ---------------------------------------------------------------------
    def begin(self) -> None:
        """Start a call: writes from now on are journaled until commit or rollback."""
        self._journal = {}
        self._seen = {}

    def commit(self) -> None:
        """Keep the call's writes (as live records; ``pack`` stores them as patches later).

        All or nothing: every changed record is encoded once to check that it can be stored. If
        one cannot be (an integer beyond 64 bits, a lone surrogate), the call is rolled back and
        ``StateError`` raised; any other exception also rolls back before it propagates. Patches
        and digests are not made here but by ``pack`` and ``hash``.
        """
        self.commit_rendering(_NOTHING)

    def commit_rendering(self, value: Any) -> str:
        """``commit``, and ``tool_output(value)`` rendered after checking the writes (a base
        record's text is rendered once per DB). A failure to render also rolls back."""
        journal = self._journal
        try:
            # 1) every changed record must encode (what pack will do later cannot fail then)
            changed = None  # the msgpack form of the returned value, when it is a changed record
            encoded: dict[tuple[str, str], bytes] | None = None
            if journal:
                encoded = {}
                records = self._records
                encode = _copy_encoder.encode
                for slot in journal:
                    record = records[slot]
                    data = encoded[slot] = encode(record)
                    if record is value:
                        changed = data
            # 2) render the output (a changed record directly: no base record, no cached text)
            if value is _NOTHING:
                text = ""
            elif changed is not None:
                text = tool_output(value, changed)
            else:
                text = self._cache.render(value)
        except OverflowError:
            self.rollback()
            raise StateError("Integer out of range (the database holds 64-bit integers)") from None
        except UnicodeEncodeError:
            self.rollback()
            raise StateError("String is not valid Unicode (a lone surrogate)") from None
        except BaseException:
            self.rollback()
            raise
        # 3) keep them (the records are already in place; their bytes serve the next copy)
        if encoded:
            if self._copies is None:
                self._copies = encoded
            else:
                self._copies.update(encoded)
        self._journal = None
        self._seen = None
        return text

    def rollback(self) -> None:
        """Undo every write made since ``begin``."""
        journal = self._journal
        self._journal = None
        self._seen = None
        if not journal:
            return
        for slot, previous in journal.items():
            if previous is not None:
                self._records[slot] = previous
                continue
            del self._records[slot]
            table, key = slot
            if self._new and key in self._new.get(table, ()):
                self._new[table].remove(key)

    def pack(self) -> None:
        """Store every live record as a compact patch against its base record (outside a call).

        ``hash`` and ``snapshot`` do it; a holder of many idle states may call it to shrink them.
        """
        if self._journal is not None:
            raise RuntimeError("State.pack during a call")
        cache = self._cache
        records = self._records
        for slot, value in records.items():
            if type(value) is not bytes:
                records[slot] = cache.pack(slot[0], slot[1], value)
        self._copies = None

    # -- hashing -------------------------------------------------------------------------------
    def hash(self) -> int:
        """The order-independent 128-bit state hash: the base's, plus each own record's change.

        Costs time proportional to the records this state changed: each is digested here, not
        at commit, so a write call pays no digest and a conversation pays one per changed record
        per comparison (states keep no digests: 10,000 of them stay small). Live records are
        digested as they are, then packed.
        """
        return (self._cache.base_sum() + self._delta()) & _MASK

    def _delta(self) -> int:
        """The sum of (own digest - base digest) over this state's own records; packs live ones."""
        if self._journal is not None:
            raise RuntimeError("State.hash during a call")
        cache = self._cache
        records = self._records
        delta = 0
        for slot, value in records.items():
            table, key = slot
            if type(value) is bytes:
                delta += record_digest(table, key, cache.unpack(table, key, value))
            else:
                delta += record_digest(table, key, value)
                records[slot] = cache.pack(table, key, value)
            delta -= cache.digest(table, key)
        self._copies = None
        return delta

    def hash_hex(self) -> str:
        """``hash()`` as 32 hex digits."""
        return f"{self.hash():032x}"

    def changed(self) -> dict[str, list[str]]:
        """Keys of the records this state holds its own versions of, per table."""
        out: dict[str, list[str]] = {}
        for table, key in self._records:
            out.setdefault(table, []).append(key)
        return out

    def nbytes(self) -> int:
        """Bytes of record data this state holds (its copied records, packed first outside a call)."""
        if self._journal is None:
            self.pack()
        return sum(len(v) for v in self._records.values() if type(v) is bytes)

    # -- materialization and snapshots --------------------------------------------------------------
    def materialize(self) -> msgspec.Struct:
        """A full, independent copy of the DB as this state sees it."""
        base = self.base
        tables = {
            t: {k: self._cache.copy_record(t, r) for k, r in self.items(t)} for t in base.table_names
        }
        return type(base.db)(**tables)

    def snapshot(self) -> bytes:
        """The state's own records as msgpack bytes, restorable over the same base."""
        if self._journal is not None:
            raise RuntimeError("State.snapshot during a call")
        delta = self._delta()  # packs every live record
        order = {t: i for i, t in enumerate(self.base.table_names)}
        rows = sorted(self._records.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))
        added = {t: self.added(t) for t in self.base.table_names}
        return _copy_encoder.encode(
            {
                "records": [[t, k, v] for (t, k), v in rows],
                "added": added,
                "delta": f"{delta & _MASK:032x}",
            }
        )

    @classmethod
    def restore(cls, base: BaseDB, data: bytes) -> State:
        """Rebuild a state from ``snapshot()`` bytes over ``base``."""
        raw = msgspec.msgpack.decode(data, type=_Snapshot)
        state = cls(base)
        for table, key, blob in raw.records:
            state._cache.unpack(table, key, blob)  # validates the record
            state._records[(table, key)] = blob
        state._new = {t: list(keys) for t, keys in raw.added.items() if keys} or None
        if state._delta() & _MASK != int(raw.delta, 16):
            raise ValueError("state snapshot does not match its base DB (hash differs)")
        return state


class _Snapshot(msgspec.Struct):
    records: list[tuple[str, str, bytes]]
    added: dict[str, list[str]]
    delta: str
