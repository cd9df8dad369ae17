"""A cache of slow-changing remote metadata (serverInfo, /field, describes).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create remote_cache."""
    op.create_table(
        "remote_cache",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_remote_cache"),
    )


def downgrade() -> None:
    """Drop remote_cache."""
    op.drop_table("remote_cache")
