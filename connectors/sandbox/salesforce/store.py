"""The emulated org's records: plain dicts per sObject keyed by Id, with the indexes queries
and upserts need, a recycle bin (``IsDeleted``), and savepoints for all-or-none writes.

Records are replaced, never mutated in place, so an undo entry is just the previous dict.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.sandbox.salesforce.metadata import SOBJECTS, SObjectDef

Record = dict[str, Any]

_MAX_ID = "\U0010ffff"


@dataclass
class Transaction:
    """Handed out by :meth:`RecordStore.transaction`; ``rollback()`` undoes it on exit."""

    rolled_back: bool = False

    def rollback(self) -> None:
        """Undo every write made inside the transaction when it ends."""
        self.rolled_back = True


class RecordStore:
    """Records of every sObject, an Id index across objects, and per-object indexes."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Record]] = {o.name: {} for o in SOBJECTS}
        self.by_id: dict[str, tuple[SObjectDef, Record]] = {}
        # (SystemModstamp, Id) of every record (deleted ones too), sorted: incremental pulls.
        self.modstamp: dict[str, list[tuple[datetime, str]]] = {o.name: [] for o in SOBJECTS}
        # External-id and unique text fields: lower-cased value -> Ids of live records.
        self.unique: dict[tuple[str, str], dict[str, set[str]]] = {
            (o.name, f.name): {} for o in SOBJECTS for f in o.fields if f.unique or f.external_id
        }
        self._undo: list[tuple[SObjectDef, str, Record | None]] | None = None
        self._depth = 0

    # -- bulk load --------------------------------------------------------------------------

    def load(self, obj: SObjectDef, rows: list[Record]) -> None:
        """Add many new records at once (world loading), then sort the index once."""
        table = self.records[obj.name]
        index = self.modstamp[obj.name]
        for row in rows:
            table[row["Id"]] = row
            self.by_id[row["Id"]] = (obj, row)
            index.append((row["SystemModstamp"], row["Id"]))
            self._index_unique(obj, row, add=True)
        index.sort()

    # -- reads ------------------------------------------------------------------------------

    def get(self, record_id: str) -> tuple[SObjectDef, Record] | None:
        """Any record (deleted ones too) by 18-character Id."""
        return self.by_id.get(record_id)

    def live(self, record_id: str) -> Record | None:
        """A record that is not in the recycle bin."""
        found = self.by_id.get(record_id)
        if found is None or found[1].get("IsDeleted"):
            return None
        return found[1]

    def iter_records(self, obj: SObjectDef, include_deleted: bool) -> Iterator[Record]:
        """Records of ``obj`` in creation order."""
        for record in self.records[obj.name].values():
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def iter_by_modstamp(
        self, obj: SObjectDef, low: datetime | None, high: datetime | None, include_deleted: bool
    ) -> Iterator[Record]:
        """Records with ``low <= SystemModstamp <= high``, in (SystemModstamp, Id) order."""
        index = self.modstamp[obj.name]
        start = 0 if low is None else bisect_left(index, (low, ""))
        stop = len(index) if high is None else bisect_right(index, (high, _MAX_ID))
        table = self.records[obj.name]
        for position in range(start, stop):
            record = table[index[position][1]]
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def find_unique(self, obj: SObjectDef, field: str, value: str) -> set[str]:
        """Ids of live records whose unique/external-id ``field`` equals ``value`` (any case)."""
        return set(self.unique[(obj.name, field)].get(value.lower(), ()))

    # -- writes -----------------------------------------------------------------------------

    def put(self, obj: SObjectDef, record: Record) -> None:
        """Insert or replace a record, keeping every index in step."""
        record_id = record["Id"]
        old = self.records[obj.name].get(record_id)
        if self._undo is not None:
            self._undo.append((obj, record_id, old))
        if old is not None:
            self._unindex(obj, old)
        self.records[obj.name][record_id] = record
        self.by_id[record_id] = (obj, record)
        insort(self.modstamp[obj.name], (record["SystemModstamp"], record_id))
        self._index_unique(obj, record, add=True)

    def _drop(self, obj: SObjectDef, record_id: str) -> None:
        old = self.records[obj.name].pop(record_id)
        self.by_id.pop(record_id, None)
        self._unindex(obj, old)

    def _unindex(self, obj: SObjectDef, record: Record) -> None:
        index = self.modstamp[obj.name]
        key = (record["SystemModstamp"], record["Id"])
        position = bisect_left(index, key)
        if position < len(index) and index[position] == key:
            del index[position]
        self._index_unique(obj, record, add=False)

    def _index_unique(self, obj: SObjectDef, record: Record, add: bool) -> None:
        if record.get("IsDeleted"):
            return
        for (name, field), values in self.unique.items():
            if name != obj.name or record.get(field) is None:
                continue
            key = str(record[field]).lower()
            if add:
                values.setdefault(key, set()).add(record["Id"])
            else:
                ids = values.get(key)
                if ids is not None:
                    ids.discard(record["Id"])
                    if not ids:
                        del values[key]

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A savepoint: writes inside are undone if the body raises or calls ``rollback()``."""
        if self._undo is None:
            self._undo = []
        self._depth += 1
        mark = len(self._undo)
        tx = Transaction()
        try:
            yield tx
        except BaseException:
            self._rollback_to(mark)
            raise
        else:
            if tx.rolled_back:
                self._rollback_to(mark)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._undo = None

    def _rollback_to(self, mark: int) -> None:
        assert self._undo is not None
        while len(self._undo) > mark:
            obj, record_id, old = self._undo.pop()
            self._drop(obj, record_id)
            if old is not None:
                saved, self._undo = self._undo, None
                self.put(obj, old)
                self._undo = saved
