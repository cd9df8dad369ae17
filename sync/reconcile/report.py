"""What reconcile found (and, with ``--apply``, did): counts, a bounded number of entries
per section in memory, and every entry for ``--json``.

Reconcile streams: the findings of each batch are added as it is compared, and only the
first :data:`EXAMPLES` entries of a section are kept as objects (what the text and rich
views show, ``limit`` of them). Every entry is also written, as one compact JSON line, to
a temporary spill file, so ``--json`` (:meth:`ReconcileReport.as_dict`) still lists every
one however many there are, without the run holding them.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from mappings.drift import Drift, Duplicate
from sync.exitcodes import ExitCode

#: Entries of a section kept in memory (the text view shows fewer; --json lists all).
EXAMPLES = 1000

#: The sections whose entries are counted, kept and spilled (``drift`` holds both sides,
#: batch by batch: a batch's CRM drift, by external id, then its Jira drift).
SECTIONS = (
    "drift",
    "conflicts",
    "duplicates",
    "unlinked_projects",
    "unlinked_customers",
    "link_problems",
    "deleted",
    "unreadable",
)


class Spill:
    """Every entry of every section, one JSON line each, in a temporary file (deleted on
    close): what ``--json`` reads back."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None

    def add(self, section: str, entry: Any) -> None:
        """Write one entry of ``section``."""
        if self._file is None:
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        line = json.dumps([section, entry], ensure_ascii=False, default=str)
        self._file.write(line + "\n")

    def read(self, section: str) -> list[Any]:
        """Every entry of ``section`` written, in the order written."""
        if self._file is None:
            return []
        self._file.flush()
        self._file.seek(0)
        found: list[Any] = []
        for line in self._file:
            name, entry = json.loads(line)
            if name == section:
                found.append(entry)
        self._file.seek(0, 2)  # back to the end: more entries may follow
        return found

    def close(self) -> None:
        """Delete the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _json(entry: Any) -> Any:
    return entry.as_dict() if isinstance(entry, Drift | Duplicate) else entry


@dataclass
class ReconcileReport:
    """What reconcile found (and, with ``--apply``, did), for the CLI and scripts.

    Each section list holds its first :data:`EXAMPLES` entries; :meth:`counts` has how
    many there are in all and :meth:`as_dict` lists every one."""

    applied: bool
    as_of: datetime
    status: str = "ok"
    exit_code: ExitCode = ExitCode.OK
    message: str = ""
    run_id: int | None = None
    read: dict[str, int] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    parked: list[dict[str, Any]] = field(default_factory=list)
    unlinked_projects: list[dict[str, Any]] = field(default_factory=list)
    unlinked_customers: list[dict[str, Any]] = field(default_factory=list)
    #: work items whose link value could not be used (the reason names the value), and
    #: the rule each fell back to; item None: an entry of the [link.static] table.
    link_problems: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    #: records read that the model cannot read, with why (left out, never stored).
    unreadable: list[dict[str, str]] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: parked writes in the store (``parked`` lists the first PARKED_LIMIT of them).
    parked_total: int = 0
    #: entries per section added with :meth:`add`, and records that drifted.
    totals: dict[str, int] = field(default_factory=dict)
    drifted_records: int = 0
    spill: Spill = field(default_factory=Spill, repr=False, compare=False)

    def add(self, section: str, entry: Any) -> None:
        """One finding of ``section`` (one of :data:`SECTIONS`): counted, kept while the
        section holds fewer than :data:`EXAMPLES`, and spilled for ``--json``."""
        self.totals[section] = self.totals.get(section, 0) + 1
        held: list[Any] = getattr(self, section)
        if len(held) < EXAMPLES:
            held.append(entry)
        self.spill.add(section, _json(entry))

    def total(self, section: str) -> int:
        """How many entries ``section`` has in all."""
        return max(self.totals.get(section, 0), len(getattr(self, section)))

    def counts(self) -> dict[str, int]:
        """How many of each finding."""
        distinct = len({(d.side, d.record) for d in self.drift})
        return {
            "drift": self.total("drift"),
            "drifted_records": max(self.drifted_records, distinct),
            "conflicts": self.total("conflicts"),
            "duplicates": self.total("duplicates"),
            "parked": max(self.parked_total, len(self.parked)),
            "unlinked_projects": self.total("unlinked_projects"),
            "unlinked_customers": self.total("unlinked_customers"),
            "link_problems": self.total("link_problems"),
            "deleted": self.total("deleted"),
            "unreadable": self.total("unreadable"),
            "written": sum(self.written.values()),
            "failed": len(self.failed),
        }

    def entries(self, section: str) -> list[Any]:
        """Every entry of ``section`` as JSON-ready values (from the spill when the list
        holds only the first of them)."""
        held: list[Any] = getattr(self, section)
        if self.totals.get(section, 0) > len(held):
            return self.spill.read(section)
        return [_json(entry) for entry in held]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``reconcile --json``): every entry of every section."""
        return {
            "applied": self.applied,
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "run_id": self.run_id,
            "counts": self.counts(),
            "read": self.read,
            "drift": self.entries("drift"),
            "conflicts": self.entries("conflicts"),
            "duplicates": self.entries("duplicates"),
            "parked": self.parked,
            "unlinked_projects": self.entries("unlinked_projects"),
            "unlinked_customers": self.entries("unlinked_customers"),
            "link_problems": self.entries("link_problems"),
            "deleted": self.entries("deleted"),
            "unreadable": self.entries("unreadable"),
            "written": self.written,
            "failed": self.failed,
            "calls": self.calls,
        }
