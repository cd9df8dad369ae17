"""Drop ``leases``: `serve` workers share a store's work through the task engine now.

Several `serve` processes on PostgreSQL used to split a store's shards by leasing rows of
``leases`` (owner, expiry, heartbeat). Shard cycles are procrastinate jobs now
(sync/jobs.py): procrastinate's per-key job locks run one shard on one worker at a time,
its worker heartbeats find a dead worker's job, and ``run`` or ``reconcile --apply``
holds the store's advisory lock (which a job holds shared). Nothing reads ``leases`` any
more, and a lease a running old version held means nothing to the new one, so the table
goes with its rows. procrastinate's own tables are not created here: `serve` applies
procrastinate's schema itself (sync/jobs.py says why). The downgrade creates the empty
table again, which an older version fills as it leases.

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

#: Migrations stand alone (not the app's schema module): as 0001 declares timestamps.
Stamp = sa.DateTime(timezone=True)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_table("leases")


def downgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("shard", sa.String(80), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("expires_at", Stamp, nullable=True),
        sa.Column("heartbeat_at", Stamp, nullable=True),
        sa.PrimaryKeyConstraint("shard", name="pk_leases"),
    )
