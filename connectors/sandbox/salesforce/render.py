"""Records as the REST API renders them: ``attributes``, typed values, nested parents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.salesforce.metadata import FieldDef, SObjectDef
from connectors.sandbox.salesforce.values import to_json

Record = dict[str, Any]
Lookup = Callable[[str], Record | None]


@dataclass
class RowPlan:
    """Rendering plan for one object level of a row: fields and nested parents, in order."""

    sobject: SObjectDef
    entries: list[tuple[str, Any]] = field(default_factory=list)
    children: dict[str, tuple[str, RowPlan]] = field(default_factory=dict)


def attributes(obj: SObjectDef, record_id: str, version: str) -> dict[str, str]:
    """The ``attributes`` block of a record."""
    return {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"}


def render_row(node: RowPlan, record: Record, version: str, lookup: Lookup) -> dict[str, Any]:
    """One query row following ``node`` (parents looked up through ``lookup``)."""
    obj = node.sobject
    row: dict[str, Any] = {"attributes": attributes(obj, record["Id"], version)}
    for kind, item in node.entries:
        if kind == "field":
            fdef: FieldDef = item
            url = None
            if fdef.type == "base64":
                url = f"/services/data/v{version}/sobjects/{obj.name}/{record['Id']}/{fdef.name}"
            row[fdef.name] = to_json(fdef, record.get(fdef.name), url)
        else:
            ref_field, child = node.children[item]
            parent_id = record.get(ref_field)
            parent = lookup(parent_id) if parent_id else None
            row[item] = None if parent is None else render_row(child, parent, version, lookup)
    return row


def render_record(
    obj: SObjectDef, record: Record, version: str, fields: list[FieldDef] | None = None
) -> dict[str, Any]:
    """A record as ``GET /sobjects/{obj}/{id}`` answers it."""
    out: dict[str, Any] = {"attributes": attributes(obj, record["Id"], version)}
    for fdef in fields or obj.fields:
        url = None
        if fdef.type == "base64":
            url = f"/services/data/v{version}/sobjects/{obj.name}/{record['Id']}/{fdef.name}"
        out[fdef.name] = to_json(fdef, record.get(fdef.name), url)
    return out
