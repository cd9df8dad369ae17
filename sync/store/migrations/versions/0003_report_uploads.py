"""Progress reports uploaded to the CRM, one per account and report period.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create report_uploads."""
    op.create_table(
        "report_uploads",
        sa.Column("account_id", sa.String(18), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("content_version_id", sa.String(18), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "period", name="pk_report_uploads"),
    )


def downgrade() -> None:
    """Drop report_uploads."""
    op.drop_table("report_uploads")
