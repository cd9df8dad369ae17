"""Drift and duplicates: what each side holds against what it should hold (reconcile).

Pure. The plan (mappings.merge.plan, given what the remotes hold) decides *which* records
need a write, with the ownership and policy rules of mappings.plan; this module says, per
field, what the remote holds and what the write will make it hold, and finds what should
exist once but exists more than once: report records for one external id or one
(project, account) pair, and one flag comment repeated without a level change between.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mappings.ids import IdForm, plain_id
from mappings.plan import _same as same_value  # the plan's own test: drift and plan agree
from mappings.plan import remote_flags_from_comments
from mappings.text import parse_marker
from mappings.writes import CrmWrite, JiraWrite, RemoteJira

__all__ = [
    "Drift",
    "Duplicate",
    "crm_drift",
    "duplicate_flag_comments",
    "duplicate_reports",
    "jira_drift",
    "redundant_flag_comments",
    "remote_jira",
]

#: The pseudo-field of a drift that is a whole record missing.
RECORD = "record"


@dataclass(frozen=True, slots=True)
class Drift:
    """One value a remote holds that differs from what it should hold."""

    side: Literal["crm", "jira"]
    record: str
    field: str
    holds: Any
    should_hold: Any

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "side": self.side,
            "record": self.record,
            "field": self.field,
            "holds": self.holds,
            "should_hold": self.should_hold,
        }


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Something that should exist once and exists ``count`` times."""

    kind: Literal["report_external_id", "report_pair", "flag_comment"]
    key: str
    count: int
    ids: tuple[str, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "kind": self.kind,
            "key": self.key,
            "count": self.count,
            "ids": list(self.ids),
            "detail": self.detail,
        }


def crm_drift(
    writes: Iterable[CrmWrite],
    remote: Mapping[str, Mapping[str, Any]],
    volatile: frozenset[str] = frozenset(),
) -> tuple[Drift, ...]:
    """Per field, how each planned report record differs from the CRM's copy (a record the
    CRM lacks is one drift of field ``record``); ``volatile`` fields (a sync time) never
    count."""
    found: list[Drift] = []
    for write in sorted(writes, key=lambda w: w.external_id):
        theirs = remote.get(write.external_id)
        if theirs is None:
            found.append(Drift("crm", write.external_id, RECORD, "missing", "present"))
            continue
        found.extend(
            Drift("crm", write.external_id, name, theirs.get(name), value)
            for name, value in write.fields
            if name not in volatile and not same_value(value, theirs.get(name))
        )
    return tuple(found)


def jira_drift(writes: Iterable[JiraWrite], remote: Mapping[str, RemoteJira]) -> tuple[Drift, ...]:
    """Per issue, how its labels, flag field and flag comments differ from what the planned
    write makes them (comments: the latest flag level per customer among its comments,
    None when none was found or the comments were not read)."""
    found: list[Drift] = []
    for write in writes:
        seen = remote.get(write.issue_key)
        labels = sorted(seen.labels) if seen is not None else []
        if write.add_labels or write.remove_labels:
            after = sorted((set(labels) | set(write.add_labels)) - set(write.remove_labels))
            found.append(Drift("jira", write.issue_key, "labels", labels, after))
        if write.set_field is not None:
            field_id, value = write.set_field
            holds = seen.field_value if seen is not None and seen.field_known else None
            found.append(Drift("jira", write.issue_key, field_id, holds, value))
        latest = dict(seen.flags or ()) if seen is not None else {}
        for comment in write.comments:
            for customer_id, level in parse_marker(comment.body):
                found.append(
                    Drift(
                        "jira",
                        write.issue_key,
                        f"flag comment {customer_id}",
                        latest.get(customer_id),
                        level,
                    )
                )
    return tuple(found)


def remote_jira(
    issue: Mapping[str, Any],
    field_id: str | None,
    comment_bodies: Iterable[str] | None = None,
) -> RemoteJira:
    """What a raw issue (as search returns it) holds of ours: labels, the flag field (when
    one is configured), and the flag levels of its comments (when they were read)."""
    fields = issue.get("fields") or {}
    labels = frozenset(str(label) for label in fields.get("labels") or ())
    value: str | None = None
    if field_id is not None:
        raw = fields.get(field_id)
        if isinstance(raw, Mapping):
            raw = raw.get("value")
        value = str(raw) if raw not in (None, "") else None
    flags = None if comment_bodies is None else remote_flags_from_comments(comment_bodies)
    return RemoteJira(
        str(issue["key"]), labels, value, flags=flags, field_known=field_id is not None
    )


def duplicate_reports(
    records: Iterable[tuple[str, Mapping[str, Any]]],
    external_id_field: str,
    account_field: str | None,
    project_field: str | None,
    ids: IdForm = plain_id,
) -> tuple[Duplicate, ...]:
    """Report records, as (record id, fields), that share an external id, or (under
    different or no external ids) one (project, customer) pair: the CRM should hold one
    record per linked pair. ``ids``: the CRM's canonical form of a customer id."""
    by_key: dict[str, list[str]] = defaultdict(list)
    by_pair: dict[str, list[str]] = defaultdict(list)
    for record_id, record in records:
        external_id = record.get(external_id_field)
        if external_id:
            by_key[str(external_id)].append(record_id)
        if account_field and project_field:
            account = ids(record.get(account_field))
            project = record.get(project_field)
            if account and project:
                by_pair[f"{project}:{account}"].append(record_id)
    found = [
        Duplicate("report_external_id", key, len(ids), tuple(sorted(ids)))
        for key, ids in sorted(by_key.items())
        if len(ids) > 1
    ]
    covered = {frozenset(d.ids) for d in found}
    found.extend(
        Duplicate("report_pair", pair, len(ids), tuple(sorted(ids)))
        for pair, ids in sorted(by_pair.items())
        if len(ids) > 1 and frozenset(ids) not in covered
    )
    return tuple(found)


def duplicate_flag_comments(
    issue_key: str, comments: Iterable[tuple[str, str]]
) -> tuple[Duplicate, ...]:
    """Flag comments repeated on one issue: a customer's marker at the level its previous
    marker already announced (a level that changed and changed back is no duplicate).
    ``comments`` are (comment id, body), oldest first; a duplicate names the ids of the
    comments that repeat the level (the first, which announced it, is not among them)."""
    last: dict[str, str] = {}
    repeats: dict[tuple[str, str], list[str]] = defaultdict(list)
    for comment_id, body in comments:
        for customer_id, level in parse_marker(body):
            if last.get(customer_id) == level:
                repeats[(customer_id, level)].append(str(comment_id))
            last[customer_id] = level
    return tuple(
        Duplicate(
            "flag_comment",
            issue_key,
            len(ids) + 1,
            ids=tuple(ids),
            detail=f"customer {customer_id} {level}",
        )
        for (customer_id, level), ids in sorted(repeats.items())
    )


def redundant_flag_comments(comments: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Ids of the flag comments (``(id, body)``, oldest first) every marker of which repeats
    the level its customer's previous marker announced: removing them loses nothing. A
    comment that also announces a change for some customer is kept."""
    last: dict[str, str] = {}
    found: list[str] = []
    for comment_id, body in comments:
        markers = parse_marker(body)
        if markers and all(last.get(customer) == level for customer, level in markers):
            found.append(str(comment_id))
        for customer, level in markers:
            last[customer] = level
    return tuple(found)
