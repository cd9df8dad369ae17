"""The reconcile report as people read it: plain text by section, or rich tables at a
terminal (``limit`` rows a section; ``--json`` lists every one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mappings.drift import Duplicate
from sync.reconcile.report import ReconcileReport

__all__ = ["Section", "render_rich", "render_text", "sections"]


@dataclass(frozen=True)
class Section:
    """One part of the text report: a title, column headers and rows of cells."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    #: how many entries the section has (``rows`` may hold only the first of them).
    total: int | None = None

    @property
    def count(self) -> int:
        """How many entries the section has in all."""
        return max(self.total or 0, len(self.rows))


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _suggestions(entry: Mapping[str, Any]) -> str:
    found = entry.get("suggestions") or []
    if not found:
        return "no similar name"
    return "; ".join(f"{s['id']} {s['name']} ({s['score']:.2f})" for s in found)


def _duplicate_note(duplicate: Duplicate) -> str:
    if duplicate.kind == "flag_comment" and duplicate.ids:
        return f"{duplicate.detail}; repeated by comment(s) {', '.join(duplicate.ids)}"
    return duplicate.detail or ", ".join(duplicate.ids)


def _deleted_note(entry: Mapping[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "jira_issue":
        where = [
            w for w, on in (("store", entry["in_store"]), ("ledger", entry["in_ledger"])) if on
        ]
        return f"gone from Jira (or out of scope); in our {' and '.join(where)}"
    if kind == "account":
        return f"{entry.get('name') or ''}: gone from the CRM".lstrip(": ")
    if entry.get("in_crm"):
        return "its pair is no longer linked; delete the record in the CRM if unwanted"
    return "we wrote it; the pair and the record are both gone"


def sections(report: ReconcileReport) -> list[Section]:
    """The report's findings, section by section (what the text and rich views show)."""
    out = [
        Section(
            "drift (the fixes written below)" if report.applied else "drift",
            ("side", "record", "field", "holds", "should hold"),
            [
                (d.side, d.record, d.field, _value(d.holds), _value(d.should_hold))
                for d in report.drift
            ],
            report.total("drift"),
        ),
        Section(
            "conflicts (a person changed what we set)",
            ("side", "record", "what", "policy", "action"),
            [(c["side"], c["key"], c["what"], c["policy"], c["action"]) for c in report.conflicts],
            report.total("conflicts"),
        ),
        Section(
            "duplicates",
            ("kind", "key", "count", "detail"),
            [(d.kind, d.key, str(d.count), _duplicate_note(d)) for d in report.duplicates],
            report.total("duplicates"),
        ),
        Section(
            "parked writes",
            ("side", "record", "attempts", "error"),
            [(p["side"], p["record"], str(p["attempts"]), str(p["error"])) for p in report.parked],
        ),
        Section(
            "records that could not be read (left out of the comparison)",
            ("side", "kind", "record", "why"),
            [(u["side"], u["kind"], u["record"], u["reason"]) for u in report.unreadable],
            report.total("unreadable"),
        ),
        Section(
            "unlinked projects",
            ("project", "name", "suggested customers"),
            [(p["key"], p["name"], _suggestions(p)) for p in report.unlinked_projects],
            report.total("unlinked_projects"),
        ),
        Section(
            "unlinked customers",
            ("account", "name", "suggested projects"),
            [(c["id"], c["name"], _suggestions(c)) for c in report.unlinked_customers],
            report.total("unlinked_customers"),
        ),
        Section(
            "link problems (values that could not be used)",
            ("project", "item", "reason", "fell back to"),
            [
                (
                    p["project"],
                    p["item"] or "[link.static]",
                    p["reason"],
                    p["linked_by"] or ("-" if p["item"] is None else "unlinked"),
                )
                for p in report.link_problems
            ],
            report.total("link_problems"),
        ),
        Section(
            "deleted",
            ("kind", "key", "note"),
            [(d["kind"], d["key"], _deleted_note(d)) for d in report.deleted],
            report.total("deleted"),
        ),
    ]
    if report.applied:
        out.append(
            Section(
                "written",
                ("what", "count"),
                [(what, str(n)) for what, n in sorted(report.written.items())],
            )
        )
    return out


def _headline(report: ReconcileReport) -> str:
    counts = report.counts()
    read = ", ".join(f"{n} {what}" for what, n in report.read.items()) or "nothing"
    head = (
        f"read {read}; {counts['drift']} drift in {counts['drifted_records']} record(s), "
        f"{counts['duplicates']} duplicate(s), {counts['parked']} parked"
    )
    return head


def _footer(report: ReconcileReport) -> str:
    if report.applied or not report.total("drift"):
        return ""
    return "nothing was written; `jira-crm-sync reconcile --apply` writes the fixes"


def render_text(report: ReconcileReport, limit: int = 50) -> str:
    """The report as plain lines, by section (``limit`` rows a section; --json has all);
    nothing when reconcile did not finish (its one-line error says why)."""
    if report.status == "failed":
        return ""
    lines = [_headline(report)]
    for section in sections(report):
        if not section.rows:
            lines.append(f"{section.title}: none")
            continue
        lines.append(f"{section.title}: {section.count}")
        for row in section.rows[:limit]:
            lines.append("  " + " | ".join(row))
        shown = min(limit, len(section.rows))
        if section.count > shown:
            lines.append(f"  ... and {section.count - shown} more (--json lists every one)")
    if _footer(report):
        lines.append(_footer(report))
    return "\n".join(lines) + "\n"


def render_rich(report: ReconcileReport, console: Any, limit: int = 50) -> None:
    """Rich tables, for a person at a terminal (nothing when reconcile did not finish)."""
    if report.status == "failed":
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console.print(Text(_headline(report)))
    for section in sections(report):
        console.print()
        if not section.rows:
            console.print(f"[bold]{escape(section.title)}[/bold]: none")
            continue
        table = Table(
            title=Text(f"{section.title} ({section.count})"),
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        last = len(section.headers) - 1
        for i, header in enumerate(section.headers):
            table.add_column(header, no_wrap=i != last, overflow="fold")
        for row in section.rows[:limit]:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        shown = min(limit, len(section.rows))
        if section.count > shown:
            console.print(Text(f"... and {section.count - shown} more (--json lists all)"))
    if _footer(report):
        console.print(Text(_footer(report)))
