"""Derive state and dirty marks in tables of their own, out of ``cursors``.

Until now both lived in ``cursors``: the derive state as source ``engine``, object
``derived:<scope>``, value ``{"day": "YYYY-MM-DD", "rules": "<digest>"}``; each dirty mark
as source ``dirty``, object ``<project>|<token>``, value the project key. The rows are
carried over (and removed from ``cursors``, which keeps only cursors):

- a derive state becomes a ``derive_state`` row; one whose value cannot be read is
  dropped, which only makes the next cycle derive that scope whole;
- a project's marks become one ``dirty_projects`` row: how many, the earliest and latest
  time, and the token of the latest (no derive runs during a migration, so any token
  the next derive reads will do).

The downgrade puts them back in ``cursors`` as they were (one mark per dirty project).

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

#: How the rows were told apart in ``cursors`` (sync.store.records before this revision).
ENGINE, DERIVED, DIRTY = "engine", "derived:", "dirty"

# The tables as this revision knows them (not sync.store.schema, which moves on).
_cursors = sa.table(
    "cursors",
    sa.column("source", sa.String),
    sa.column("object", sa.String),
    sa.column("value", sa.JSON),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_derive_state = sa.table(
    "derive_state",
    sa.column("scope", sa.String),
    sa.column("day", sa.Date),
    sa.column("rules_digest", sa.String),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_dirty_projects = sa.table(
    "dirty_projects",
    sa.column("project_key", sa.String),
    sa.column("token", sa.String),
    sa.column("marks", sa.Integer),
    sa.column("first_marked_at", sa.DateTime(timezone=True)),
    sa.column("last_marked_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Create derive_state and dirty_projects and move their rows out of cursors."""
    op.create_table(
        "derive_state",
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("rules_digest", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_derive_state"),
    )
    op.create_table(
        "dirty_projects",
        sa.Column("project_key", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("marks", sa.Integer, nullable=False, server_default="1"),
        sa.Column("first_marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_key", name="pk_dirty_projects"),
    )
    conn = op.get_bind()
    c = _cursors.c
    derived = sa.and_(c.source == ENGINE, c.object.startswith(DERIVED, autoescape=True))
    states = [
        state
        for obj, value, at in conn.execute(
            sa.select(c.object, c.value, c.updated_at).where(derived)
        )
        if (state := _derive_state_row(obj.removeprefix(DERIVED), value, at)) is not None
    ]
    if states:
        conn.execute(sa.insert(_derive_state), states)
    marks = conn.execute(
        sa.select(c.object, c.value, c.updated_at)
        .where(c.source == DIRTY)
        .order_by(c.updated_at, c.object)  # (value is JSON: PostgreSQL cannot order by it)
    )
    projects: dict[str, dict[str, Any]] = {}
    for obj, project, at in marks:
        key = str(project)
        token = obj.removeprefix(f"{key}|")
        row = projects.get(key)
        if row is None:  # by time: a project's first row is its earliest mark
            projects[key] = {
                "project_key": key,
                "token": token,
                "marks": 1,
                "first_marked_at": at,
                "last_marked_at": at,
            }
        else:
            row.update(token=token, marks=row["marks"] + 1, last_marked_at=at)
    if projects:
        conn.execute(sa.insert(_dirty_projects), list(projects.values()))
    conn.execute(sa.delete(_cursors).where(sa.or_(derived, c.source == DIRTY)))


def _derive_state_row(scope: str, value: Any, at: Any) -> dict[str, Any] | None:
    try:
        day = date.fromisoformat(str(value["day"]))
        digest = str(value["rules"])
    except (TypeError, KeyError, ValueError):
        return None
    return {"scope": scope, "day": day, "rules_digest": digest, "updated_at": at}


def downgrade() -> None:
    """Put the derive state and dirty marks back into cursors; drop their tables."""
    conn = op.get_bind()
    d, p = _derive_state.c, _dirty_projects.c
    rows = [
        {
            "source": ENGINE,
            "object": f"{DERIVED}{scope}",
            "value": {"day": day.isoformat(), "rules": digest},
            "updated_at": at,
        }
        for scope, day, digest, at in conn.execute(
            sa.select(d.scope, d.day, d.rules_digest, d.updated_at)
        )
    ]
    rows += [
        {"source": DIRTY, "object": f"{project}|{token}", "value": project, "updated_at": at}
        for project, token, at in conn.execute(sa.select(p.project_key, p.token, p.first_marked_at))
    ]
    if rows:
        conn.execute(sa.insert(_cursors), rows)
    op.drop_table("dirty_projects")
    op.drop_table("derive_state")
