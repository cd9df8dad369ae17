"""The initial state store: cursors, records, links, ledger, outbox, runs, history, leases.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types of the time; later schema changes get their own revision.
Stamp = sa.DateTime(timezone=True)


def _deleted() -> sa.Column[bool]:
    return sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false())


def upgrade() -> None:
    """Create every table of the state store."""
    op.create_table(
        "cursors",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("object", sa.String(80), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("source", "object", name="pk_cursors"),
    )
    op.create_table(
        "jira_items",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("project_key", sa.String(64), nullable=False),
        sa.Column("issue_id", sa.String(32), nullable=True),
        sa.Column("updated", Stamp, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        _deleted(),
        sa.Column("deleted_at", Stamp, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_jira_items"),
    )
    op.create_index("ix_jira_items_project_key_deleted", "jira_items", ["project_key", "deleted"])
    op.create_table(
        "crm_accounts",
        sa.Column("id", sa.String(18), nullable=False),
        sa.Column("modstamp", Stamp, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        _deleted(),
        sa.Column("deleted_at", Stamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crm_accounts"),
    )
    op.create_table(
        "crm_cases",
        sa.Column("id", sa.String(18), nullable=False),
        sa.Column("account_id", sa.String(18), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("is_escalated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("modstamp", Stamp, nullable=True),
        _deleted(),
        sa.PrimaryKeyConstraint("id", name="pk_crm_cases"),
    )
    op.create_index("ix_crm_cases_account_id", "crm_cases", ["account_id"])
    op.create_table(
        "survey_responses",
        sa.Column("id", sa.String(18), nullable=False),
        sa.Column("account_id", sa.String(18), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("responded_at", Stamp, nullable=True),
        sa.Column("modstamp", Stamp, nullable=True),
        _deleted(),
        sa.PrimaryKeyConstraint("id", name="pk_survey_responses"),
    )
    op.create_index(
        "ix_survey_responses_account_id_responded_at",
        "survey_responses",
        ["account_id", "responded_at"],
    )
    op.create_table(
        "links",
        sa.Column("customer_id", sa.String(18), nullable=False),
        sa.Column("project_key", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(255), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "project_key", name="pk_links"),
    )
    op.create_index("ix_links_project_key", "links", ["project_key"])
    op.create_table(
        "write_ledger",
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(128), nullable=False),
        sa.Column("field", sa.String(128), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("written_at", Stamp, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("target", "record_key", "field", name="pk_write_ledger"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(128), nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", Stamp, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("shard", sa.String(80), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'inflight', 'done', 'parked')", name="ck_outbox_state"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_outbox_open",
        "outbox",
        ["target", "record_key", "op"],
        unique=True,
        sqlite_where=sa.text("state <> 'done'"),
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.create_index(
        "ix_outbox_state_target_next_attempt_at", "outbox", ["state", "target", "next_attempt_at"]
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("started_at", Stamp, nullable=False),
        sa.Column("finished_at", Stamp, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("full", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("calls", sa.JSON(), nullable=True),
        sa.Column("pulled", sa.JSON(), nullable=True),
        sa.Column("written", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "progress_snapshots",
        sa.Column("customer_id", sa.String(18), nullable=False),
        sa.Column("project_key", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("in_progress", sa.Integer(), nullable=False),
        sa.Column("todo", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("percent_complete", sa.Float(), nullable=False),
        sa.Column("health", sa.String(16), nullable=False),
        sa.Column("forecast_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "project_key", "day", name="pk_progress_snapshots"),
    )
    op.create_index(
        "ix_progress_snapshots_project_key_day", "progress_snapshots", ["project_key", "day"]
    )
    op.create_table(
        "satisfaction_history",
        sa.Column("customer_id", sa.String(18), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("scale", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name="pk_satisfaction_history"),
    )
    op.create_table(
        "satisfaction_flags",
        sa.Column("customer_id", sa.String(18), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("since", Stamp, nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_satisfaction_flags"),
    )
    op.create_table(
        "api_usage",
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("side", "day", name="pk_api_usage"),
    )
    op.create_table(
        "leases",
        sa.Column("shard", sa.String(80), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("expires_at", Stamp, nullable=True),
        sa.Column("heartbeat_at", Stamp, nullable=True),
        sa.PrimaryKeyConstraint("shard", name="pk_leases"),
    )


def downgrade() -> None:
    """Drop every table of the state store."""
    for table in (
        "leases",
        "api_usage",
        "satisfaction_flags",
        "satisfaction_history",
        "progress_snapshots",
        "runs",
        "outbox",
        "write_ledger",
        "links",
        "survey_responses",
        "crm_cases",
        "crm_accounts",
        "jira_items",
        "cursors",
    ):
        op.drop_table(table)
