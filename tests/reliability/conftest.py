"""The state-store fixtures of tests/sync: ``store_url`` runs a test on SQLite and on
PostgreSQL (skipped without JIRA_CRM_SYNC_TEST_POSTGRES_URL)."""

from __future__ import annotations

from tests.sync.conftest import pg_schema_url, store_url

__all__ = ["pg_schema_url", "store_url"]
