"""``api_reservations``: the calls each running cycle reserved of the day's API budget.

`serve` on PostgreSQL runs a connection's shard cycles as jobs on several workers at once.
Each job read the day's usage at its start and counted its calls only at its end, so jobs
in flight together could spend up to their per-cycle allowances past the daily budget. A
cycle now reserves its allowance here at its start, within what is left of the day after
the calls made and the other runs' reservations, and its end replaces the reservation by
the calls it made. A store before this revision has no reservation; the downgrade drops
the table (the calls runs made are in ``api_usage`` either way).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "api_reservations",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "side", name=op.f("pk_api_reservations")),
    )


def downgrade() -> None:
    op.drop_table("api_reservations")
