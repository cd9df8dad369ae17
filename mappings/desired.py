"""Desired state: the report record each linked pair should have in the CRM, and what each
linked Jira issue should carry for its customers' flags ([push.crm], [push.jira])."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mappings.dates import iso_date, iso_datetime
from mappings.model import (
    FLAG_LEVELS,
    FlagLevel,
    LinkTarget,
    ProgressReport,
    SatisfactionFlag,
    WorkItem,
)
from mappings.rules import CrmPushRules, JiraPushRules
from mappings.satisfaction import worst_level
from mappings.text import join_reasons, truncate
from mappings.writes import CrmWrite, FieldValue, content_digest

__all__ = ["VOLATILE_FIELDS", "JiraDesired", "crm_values", "desired_crm", "desired_jira"]

#: Model names whose change alone is no reason to write (they change every run).
VOLATILE_FIELDS = frozenset({"last_synced"})
_HEALTH = {"green": "Green", "amber": "Amber", "red": "Red"}
_LONG_TEXT = 32000
_REASONS_LIMIT = 1000
_NAME_LIMIT = 255


def crm_values(report: ProgressReport) -> dict[str, FieldValue]:
    """Every unified-model value a report record may carry, by model name."""
    milestone = report.next_milestone
    return {
        "account": report.customer_id,
        "project_key": report.project_key,
        "issues_total": report.total,
        "issues_done": report.done,
        "issues_in_progress": report.in_progress,
        "issues_to_do": report.todo,
        "issues_overdue": report.overdue,
        "issues_blocked": report.blocked,
        "percent_complete": report.percent_complete,
        "health": _HEALTH[report.health],
        "health_reasons": truncate(
            join_reasons(report.health_reasons) or "On track", _REASONS_LIMIT
        ),
        "next_milestone": truncate(milestone.name, _NAME_LIMIT) if milestone else None,
        "next_milestone_date": iso_date(milestone.release_date) if milestone else None,
        "next_milestone_percent": milestone.percent_complete if milestone else None,
        "forecast_date": iso_date(report.forecast.date),
        "forecast_note": report.forecast.note or None,
        "summary": truncate(report.summary, _LONG_TEXT),
        "top_risks": truncate("\n".join(report.top_risks), _LONG_TEXT) or None,
        "customer_name": truncate(report.customer_name, _NAME_LIMIT),
        "project_name": truncate(report.project_name, _NAME_LIMIT),
        "jira_url": report.url or None,
        "last_synced": iso_datetime(report.as_of),
    }


def desired_crm(reports: Iterable[ProgressReport], rules: CrmPushRules) -> tuple[CrmWrite, ...]:
    """One report record per linked (customer, project), sorted by external id."""
    volatile = frozenset(crm for name, crm in rules.fields if name in VOLATILE_FIELDS)
    writes = []
    for report in reports:
        values = crm_values(report)
        fields = tuple(sorted((crm, values[name]) for name, crm in rules.fields))
        writes.append(
            CrmWrite(
                object=rules.object,
                external_id_field=rules.external_id_field,
                external_id=report.external_id,
                fields=fields,
                digest=content_digest(fields, volatile),
            )
        )
    writes.sort(key=lambda write: write.external_id)
    return tuple(writes)


@dataclass(frozen=True, slots=True)
class JiraDesired:
    """What one linked issue should carry: our label (or none), the flag field's value (None:
    hold none), and each linked customer's current level. ``quiet``: customers whose level
    changes are announced on an ancestor of the issue, not on it (``comment_on = "epics"``)."""

    label: str | None
    field_value: FlagLevel | None
    flags: tuple[tuple[str, FlagLevel], ...]
    quiet: frozenset[str] = frozenset()


def desired_jira(
    items: Iterable[WorkItem],
    by_item: Mapping[str, tuple[LinkTarget, ...]],
    flags: Mapping[str, SatisfactionFlag],
    rules: JiraPushRules,
    flag_field: str | None,
) -> dict[str, JiraDesired]:
    """Per linked issue in scope ([push.jira].issues), what its customers' flags imply.

    ``open`` means linked items not done, ``epics`` linked epics not done, ``all`` every
    linked item. An issue of several customers carries the label when any of them is at a
    label level, and the worst level in the field; at ok the field is left empty (what we
    set is cleared), like the label. Customers without a flag count as ok.

    With ``comment_on = "epics"``, a customer is ``quiet`` on an issue when an ancestor
    (parent or epic, up the chain) is in scope and linked to it too: the comment about the
    customer goes on the topmost such issue, usually the epic, and not on every child.
    """
    items = items if isinstance(items, tuple) else tuple(items)
    label_levels = frozenset(rules.label_levels)
    # Issues of the same customers want the same: one value per customer combination.
    shared: dict[int, JiraDesired] = {}
    out: dict[str, JiraDesired] = {}
    issues = rules.issues
    everything = issues == "all"
    epics_only = issues == "epics"
    for item in items:
        if not everything and (item.status_category == "done" or (epics_only and not item.is_epic)):
            continue
        links = by_item.get(item.key)
        if not links:
            continue
        # Linking shares one targets tuple among items linked alike: its id is enough.
        combination = id(links)
        desired = shared.get(combination)
        if desired is None:
            levels = tuple(
                sorted({(ln.customer_id, _level(flags.get(ln.customer_id))) for ln in links})
            )
            worst = worst_level(level for _, level in levels)
            desired = JiraDesired(
                label=rules.label if any(level in label_levels for _, level in levels) else None,
                field_value=worst if flag_field and worst != "ok" else None,
                flags=levels,
            )
            shared[combination] = desired
        out[item.key] = desired
    if rules.comment_on_change and rules.comment_on == "epics" and out:
        _quiet_below_ancestors(items, out)
    return out


def _quiet_below_ancestors(items: tuple[WorkItem, ...], out: dict[str, JiraDesired]) -> None:
    """Mark, on each issue of ``out``, the customers an ancestor in ``out`` also carries."""
    index = {item.key: item for item in items}
    above: dict[str, frozenset[str]] = {}

    def customers_above(item: WorkItem, seen: frozenset[str]) -> frozenset[str]:
        known = above.get(item.key)
        if known is not None:
            return known
        found: set[str] = set()
        for key in (item.parent_key, item.epic_key):
            if key is None or key in seen:
                continue
            ancestor = index.get(key)
            if ancestor is None:
                continue  # outside this merge (another batch's project): not known to carry
            carried = out.get(key)
            if carried is not None:
                found.update(customer for customer, _ in carried.flags)
            found.update(customers_above(ancestor, seen | {key}))
        result = frozenset(found)
        above[item.key] = result
        return result

    variants: dict[tuple[int, frozenset[str]], JiraDesired] = {}
    for key, desired in out.items():
        item = index[key]
        if item.parent_key is None and item.epic_key is None:
            continue
        quiet = customers_above(item, frozenset({key})).intersection(c for c, _ in desired.flags)
        if not quiet:
            continue
        variant = variants.get((id(desired), quiet))
        if variant is None:
            variant = JiraDesired(desired.label, desired.field_value, desired.flags, quiet)
            variants[(id(desired), quiet)] = variant
        out[key] = variant


def _level(flag: SatisfactionFlag | None) -> FlagLevel:
    return flag.level if flag is not None else FLAG_LEVELS[0]
