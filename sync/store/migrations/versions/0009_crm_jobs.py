"""``crm_jobs``: bulk write jobs of the CRM (connectors.crm.BulkUpserts), recorded before
their data is sent, so that a run killed mid-job resumes it or sends its records again
(issue 17).

Revision ID: 0009
Revises: 0006
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create crm_jobs."""
    op.create_table(
        "crm_jobs",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("object", sa.String(255), nullable=False),
        sa.Column("external_id_field", sa.String(255), nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_crm_jobs"),
    )


def downgrade() -> None:
    """Drop crm_jobs."""
    op.drop_table("crm_jobs")
