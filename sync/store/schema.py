"""The state store's tables: SQLAlchemy Core on one MetaData, portable across SQLite and PostgreSQL.

The migrations (``migrations/versions/``) create exactly these tables; a test compares
the two with Alembic's autogenerate so they cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "OUTBOX_STATES",
    "UtcDateTime",
    "api_reservations",
    "api_usage",
    "bulk_tasks",
    "crm_accounts",
    "crm_cases",
    "crm_jobs",
    "cursors",
    "derive_state",
    "dirty_projects",
    "jira_items",
    "link_problems",
    "links",
    "metadata",
    "outbox",
    "progress_snapshots",
    "quarantine",
    "remote_cache",
    "report_uploads",
    "runs",
    "satisfaction_flags",
    "satisfaction_history",
    "survey_responses",
    "use_postgresql",
    "write_ledger",
]

OUTBOX_STATES = ("pending", "inflight", "done", "parked")

#: The rows ``uq_outbox_open`` keeps unique: the writes not done yet.
_OUTBOX_OPEN_WHERE = "state <> 'done'"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is tz-aware UTC going in and coming out.

    SQLite has no time zones and hands back naive values; they are stored as UTC and
    given their zone back on the way out. A naive value going in is a bug, so it raises.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store takes tz-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _deleted() -> sa.Column[bool]:
    return sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false())


#: Where each pull got to: Jira issues and key scans per shard (``issues:<shard>``,
#: ``key_scan:<shard>``), the CRM per stream. Saved with the records they cover.
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("object", sa.String(80), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: When each scope was last derived in full, and under which rules: ``*`` (every
#: project) for a single worker, else one project key per project a worker holds. A
#: scope whose day or rules digest differs from the cycle's is derived whole again
#: (overdue counts and forecasts move with the date). Saved after the last batch.
derive_state = sa.Table(
    "derive_state",
    metadata,
    sa.Column("scope", sa.String(80), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("rules_digest", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: Projects whose stored records changed and that no derive has covered since: marked
#: in the transaction that stores the records, so a pull whose cursor advanced loses no
#: change even if the process dies before the derive. Every mark gives the row a new
#: ``token``; a derive clears the row only if its token is still the one it read, so a
#: mark made during the derive survives. ``marks`` counts the marks since the project
#: was last clean, ``first_marked_at`` is when it stopped being clean.
dirty_projects = sa.Table(
    "dirty_projects",
    metadata,
    sa.Column("project_key", sa.String(64), primary_key=True),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("marks", sa.Integer, nullable=False, server_default="1"),
    sa.Column("first_marked_at", UtcDateTime, nullable=False),
    sa.Column("last_marked_at", UtcDateTime, nullable=False),
)

jira_items = sa.Table(
    "jira_items",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("project_key", sa.String(64), nullable=False),
    sa.Column("issue_id", sa.String(32), nullable=True),
    sa.Column("updated", UtcDateTime, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    _deleted(),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    sa.Index(None, "project_key", "deleted"),
)

crm_accounts = sa.Table(
    "crm_accounts",
    metadata,
    sa.Column("id", sa.String(18), primary_key=True),
    sa.Column("modstamp", UtcDateTime, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    _deleted(),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
)

crm_cases = sa.Table(
    "crm_cases",
    metadata,
    sa.Column("id", sa.String(18), primary_key=True),
    sa.Column("account_id", sa.String(18), nullable=True),
    sa.Column("is_closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_escalated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("modstamp", UtcDateTime, nullable=True),
    _deleted(),
    sa.Index(None, "account_id"),
)

survey_responses = sa.Table(
    "survey_responses",
    metadata,
    sa.Column("id", sa.String(18), primary_key=True),
    sa.Column("account_id", sa.String(18), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("responded_at", UtcDateTime, nullable=True),
    sa.Column("modstamp", UtcDateTime, nullable=True),
    _deleted(),
    sa.Index(None, "account_id", "responded_at"),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("customer_id", sa.String(18), primary_key=True),
    sa.Column("project_key", sa.String(64), primary_key=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(255), nullable=True),
    sa.Column("item_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "project_key"),
)

write_ledger = sa.Table(
    "write_ledger",
    metadata,
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("record_key", sa.String(128), primary_key=True),
    sa.Column("field", sa.String(128), primary_key=True),
    sa.Column("value_hash", sa.String(64), nullable=False),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("written_at", UtcDateTime, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("record_key", sa.String(128), nullable=False),
    sa.Column("op", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("shard", sa.String(80), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'inflight', 'done', 'parked')", name="state"),
    # At most one unfinished write per (target, record, op): re-planning replaces it.
    # Its PostgreSQL half (the same WHERE) is given by use_postgresql(): a postgresql_
    # keyword here would load that dialect in every process, a SQLite store's included.
    sa.Index(
        "uq_outbox_open",
        "target",
        "record_key",
        "op",
        unique=True,
        sqlite_where=sa.text(_OUTBOX_OPEN_WHERE),
    ),
    sa.Index(None, "state", "target", "next_attempt_at"),
    sqlite_autoincrement=True,  # ids never reused after pruning
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("worker", sa.String(255), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("full", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("calls", sa.JSON, nullable=True),
    sa.Column("pulled", sa.JSON, nullable=True),
    sa.Column("written", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # the stage a failed cycle failed in (sync.cycle.engine.StageFailed); NULL otherwise
    sa.Column("failed_stage", sa.String(16), nullable=True),
    sa.Index(None, "started_at"),
    sqlite_autoincrement=True,
)

progress_snapshots = sa.Table(
    "progress_snapshots",
    metadata,
    sa.Column("customer_id", sa.String(18), primary_key=True),
    sa.Column("project_key", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("in_progress", sa.Integer, nullable=False),
    sa.Column("todo", sa.Integer, nullable=False),
    sa.Column("overdue", sa.Integer, nullable=False),
    sa.Column("blocked", sa.Integer, nullable=False),
    sa.Column("percent_complete", sa.Float, nullable=False),
    sa.Column("health", sa.String(16), nullable=False),
    sa.Column("forecast_date", sa.Date, nullable=True),
    sa.Index(None, "project_key", "day"),
)

satisfaction_history = sa.Table(
    "satisfaction_history",
    metadata,
    sa.Column("customer_id", sa.String(18), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("scale", sa.Integer, nullable=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
)

satisfaction_flags = sa.Table(
    "satisfaction_flags",
    metadata,
    sa.Column("customer_id", sa.String(18), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
)

api_usage = sa.Table(
    "api_usage",
    metadata,
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False, server_default="0"),
)

#: The calls a running cycle may still spend, per side and UTC day: reserved at its start
#: within what is left of the day (``api_usage`` plus the other runs' reservations), so
#: jobs of one connection running at once never spend past the day's budget together. The
#: run's end replaces it by the calls it made (``api_usage``); marking the run interrupted
#: releases it.
api_reservations = sa.Table(
    "api_reservations",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
)

#: Bulk edits submitted to a remote and not settled yet (Jira Cloud's queued tasks): the
#: task id, recorded as soon as the remote answers the submit, with the outbox rows it
#: carries. A cycle that finds one (the run before it stopped mid-task) reads the task's
#: progress and settles those rows before it sends anything to their records again.
bulk_tasks = sa.Table(
    "bulk_tasks",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("outbox_ids", sa.JSON, nullable=False),
    sa.Column("record_keys", sa.JSON, nullable=False),
    sa.Column("shards", sa.JSON, nullable=False),
    sa.Column("submitted_at", UtcDateTime, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=True),
)

#: What a remote told us that rarely changes (Jira serverInfo and /field, the CRM's
#: object metadata), so a `run` process does not read it again every cycle. Never secrets.
remote_cache = sa.Table(
    "remote_cache",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
)

#: Progress reports uploaded to the CRM (a file attached to the account), one per account
#: and report period: with the remote check by title, an upload is never repeated.
report_uploads = sa.Table(
    "report_uploads",
    metadata,
    sa.Column("account_id", sa.String(18), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("content_version_id", sa.String(18), nullable=False),
    sa.Column("uploaded_at", UtcDateTime, nullable=False),
)

#: Records a pull read but could not use (a value of the wrong type, a key it needs
#: missing): set aside with the reason, so the rest of the page and the cursor go on.
#: Shown by `status`, counted in `run --json`, read again at the next full pass; a row
#: goes when the record is read cleanly (or is deleted remotely).
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(80), primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
)

#: Work items whose link value could not be used (not an account id, an unknown
#: account), with the rule they fell back to: replaced per project at each derive, so
#: `status`, `run` and `reconcile` can list each issue and value.
link_problems = sa.Table(
    "link_problems",
    metadata,
    sa.Column("project_key", sa.String(64), primary_key=True),
    sa.Column("item_key", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("linked_by", sa.String(64), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: Bulk write jobs the CRM runs for us (connectors.crm.BulkUpserts), recorded when created and
#: before their data is sent: a run killed mid-job finds the job again, maps its results
#: back to the outbox rows (``rows``: ``[[outbox id, payload hash, record key], ...]``) or
#: sends them again. A row goes once its results are recorded.
crm_jobs = sa.Table(
    "crm_jobs",
    metadata,
    sa.Column("job_id", sa.String(40), primary_key=True),
    sa.Column("side", sa.String(16), nullable=False),
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("external_id_field", sa.String(255), nullable=False),
    sa.Column("rows", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)


def use_postgresql() -> None:
    """Give the tables their PostgreSQL-only options (``uq_outbox_open``'s WHERE, which
    SQLite has as ``sqlite_where``). Called for every PostgreSQL engine (and idempotent):
    SQLAlchemy loads a dialect to check its keyword arguments, so options given at import
    would load the PostgreSQL dialect for a SQLite store too."""
    (index,) = (i for i in outbox.indexes if i.name == "uq_outbox_open")
    index.dialect_options["postgresql"]["where"] = sa.text(_OUTBOX_OPEN_WHERE)
