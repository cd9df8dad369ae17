"""``bulk_tasks``: bulk edits submitted to a remote and not settled yet.

Jira Cloud runs a bulk edit as a queued task. Its id is recorded as soon as Jira answers
the submit, with the outbox rows it carries, so a run stopped mid-task is settled by the
next one (it reads the task's progress) before anything else is sent to those issues.
Stores before this revision have no task in flight. The downgrade drops the table (a task
recorded there is then resent as a plain write, which is idempotent).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_tasks",
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("outbox_ids", sa.JSON, nullable=False),
        sa.Column("record_keys", sa.JSON, nullable=False),
        sa.Column("shards", sa.JSON, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_bulk_tasks")),
    )


def downgrade() -> None:
    op.drop_table("bulk_tasks")
