"""``runs.failed_stage``: the stage a failed cycle failed in.

A failed cycle names its stage (sign-in, pull, derive, record, push, upload) so that
``status`` can say "failed in push". Runs recorded before this revision have none (NULL),
as have runs that did not fail. The downgrade drops the column.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("failed_stage", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("failed_stage")
