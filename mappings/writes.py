"""The plan of writes: what to write to each side, what to record in the ledger, conflicts.

Every value here is deterministic and sorted, so two plans of the same inputs are equal and
render to identical JSON and text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from mappings.model import FlagLevel

__all__ = [
    "Conflict",
    "CrmWrite",
    "FieldValue",
    "JiraComment",
    "JiraLedger",
    "JiraWrite",
    "Plan",
    "RemoteJira",
    "content_digest",
]

FieldValue = str | int | float | bool | None


def content_digest(fields: tuple[tuple[str, FieldValue], ...], volatile: frozenset[str]) -> str:
    """A stable hash of the fields that matter (``volatile`` ones, like a sync time, left out)."""
    body = [[name, value] for name, value in fields if name not in volatile]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CrmWrite:
    """One report record to upsert by external id. ``fields`` are sorted by CRM field name."""

    object: str
    external_id_field: str
    external_id: str
    fields: tuple[tuple[str, FieldValue], ...]
    #: Hash of the non-volatile fields: what the ledger keeps.
    digest: str

    def record(self) -> dict[str, Any]:
        """The record as sObject Collections take it (``attributes.type`` set)."""
        record: dict[str, Any] = {"attributes": {"type": self.object}}
        record[self.external_id_field] = self.external_id
        record.update(self.fields)
        return record

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "object": self.object,
            "external_id": self.external_id,
            "fields": dict(self.fields),
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class JiraComment:
    """A comment to post; ``markers`` are the machine-findable tags inside ``body``, one per
    customer whose level it announces."""

    markers: tuple[str, ...]
    body: str

    @property
    def marker(self) -> str:
        """The markers as one text (the one marker of a single customer's comment)."""
        return " ".join(self.markers)


@dataclass(frozen=True, slots=True)
class JiraLedger:
    """What we own on one issue: the label we added, the field value we set, and per
    customer the last level judged on it (ok included; a customer missing here was never
    seen on the issue, so its level is a first sight, not a change)."""

    issue_key: str
    label: str | None = None
    field_value: str | None = None
    flags: tuple[tuple[str, FlagLevel], ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when we own nothing on the issue (the ledger row can go)."""
        return self.label is None and self.field_value is None and not self.flags

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the state store keeps it so)."""
        return {
            "issue_key": self.issue_key,
            "label": self.label,
            "field_value": self.field_value,
            "flags": [list(flag) for flag in self.flags],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JiraLedger:
        """The inverse of :meth:`as_dict`."""
        return cls(
            issue_key=str(data["issue_key"]),
            label=data.get("label"),
            field_value=data.get("field_value"),
            flags=tuple((str(c), level) for c, level in data.get("flags") or ()),
        )


@dataclass(frozen=True, slots=True)
class RemoteJira:
    """What an issue holds now, as far as we care: its labels, the flag field's value, and
    per customer the level of the latest flag marker among its comments.

    ``field_known`` False means the field was not read; ``flags`` None, that the comments
    were not (a normal cycle knows the labels of the issues it pulled, and little more).
    """

    issue_key: str
    labels: frozenset[str] = frozenset()
    field_value: str | None = None
    flags: tuple[tuple[str, FlagLevel], ...] | None = None
    field_known: bool = True


@dataclass(frozen=True, slots=True)
class JiraWrite:
    """Changes to one issue, and the ledger entry to record once they succeed."""

    issue_key: str
    add_labels: tuple[str, ...]
    remove_labels: tuple[str, ...]
    #: (field id, value) to set; value None clears the field. None: leave the field alone.
    set_field: tuple[str, str | None] | None
    comments: tuple[JiraComment, ...]
    ledger: JiraLedger
    #: Some comment announces a level the ledger had no memory of on this issue (the first
    #: sight of it, with ``comment_on_first_sight``) and the issue's comments were not read:
    #: the push looks for our markers on the site before posting.
    check_markers: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        out: dict[str, Any] = {"issue_key": self.issue_key}
        if self.add_labels:
            out["add_labels"] = list(self.add_labels)
        if self.remove_labels:
            out["remove_labels"] = list(self.remove_labels)
        if self.set_field is not None:
            out["set_field"] = {"id": self.set_field[0], "value": self.set_field[1]}
        if self.comments:
            out["comments"] = [comment.body for comment in self.comments]
        return out


@dataclass(frozen=True, slots=True)
class Conflict:
    """A value we own that a person changed, and what the policy made of it."""

    side: Literal["jira", "crm"]
    key: str
    what: str
    ours: str | None
    theirs: str | None
    action: Literal["enforced", "respected"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "side": self.side,
            "key": self.key,
            "what": self.what,
            "ours": self.ours,
            "theirs": self.theirs,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Only what changed: writes to each side, ledger-only updates, stale records, conflicts."""

    crm: tuple[CrmWrite, ...] = ()
    jira: tuple[JiraWrite, ...] = ()
    #: (external id, digest) to record without writing: the remote already holds it.
    crm_ledger: tuple[tuple[str, str], ...] = ()
    #: ledger entries to record without writing (an empty one means: drop the row).
    jira_ledger: tuple[JiraLedger, ...] = ()
    #: report records we wrote (or the CRM holds) for pairs no longer linked.
    stale_crm: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        """True when nothing is to be written or recorded."""
        return not (self.crm or self.jira or self.crm_ledger or self.jira_ledger)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, stable across runs."""
        return {
            "crm": [write.as_dict() for write in self.crm],
            "jira": [write.as_dict() for write in self.jira],
            "crm_ledger": [list(entry) for entry in self.crm_ledger],
            "jira_ledger": [entry.as_dict() for entry in self.jira_ledger],
            "stale_crm": list(self.stale_crm),
            "conflicts": [conflict.as_dict() for conflict in self.conflicts],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The plan as JSON with sorted keys (byte-identical for equal plans)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True, indent=indent)

    def render_text(self) -> str:
        """One line per write, for ``run --dry-run`` and diffs between plans."""
        lines: list[str] = []
        for write in self.crm:
            lines.append(f"crm upsert {write.object} {write.external_id}")
            lines.extend(
                f"  {name} = {json.dumps(value, ensure_ascii=False)}"
                for name, value in write.fields
            )
        for jira in self.jira:
            changes = [f"+{label}" for label in jira.add_labels]
            changes += [f"-{label}" for label in jira.remove_labels]
            if jira.set_field is not None:
                changes.append(f"{jira.set_field[0]}={jira.set_field[1]}")
            changes += [f"comment {comment.marker}" for comment in jira.comments]
            lines.append(f"jira {jira.issue_key} {' '.join(changes)}")
        lines.extend(f"ledger crm {key}" for key, _ in self.crm_ledger)
        lines.extend(f"ledger jira {entry.issue_key}" for entry in self.jira_ledger)
        lines.extend(f"stale crm {key}" for key in self.stale_crm)
        lines.extend(
            f"conflict {c.side} {c.key} {c.what}: ours={c.ours} theirs={c.theirs} -> {c.action}"
            for c in self.conflicts
        )
        return "\n".join(lines) + ("\n" if lines else "")
