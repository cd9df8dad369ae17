"""Quarantined records and link problems.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create quarantine and link_problems."""
    op.create_table(
        "quarantine",
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("side", "kind", "record_id", name="pk_quarantine"),
    )
    op.create_table(
        "link_problems",
        sa.Column("project_key", sa.String(64), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("linked_by", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_key", "item_key", name="pk_link_problems"),
    )


def downgrade() -> None:
    """Drop quarantine and link_problems."""
    op.drop_table("link_problems")
    op.drop_table("quarantine")
