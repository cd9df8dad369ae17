"""State-store fixtures: every store test runs on a SQLite file and on PostgreSQL.

PostgreSQL tests need ``JIRA_CRM_SYNC_TEST_POSTGRES_URL`` and skip without it. Each test
gets a schema of its own (``search_path`` in the URL), dropped afterwards, so tests are
isolated from each other and from anything else using the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sync.store.db import Store, open_store

POSTGRES_ENV = "JIRA_CRM_SYNC_TEST_POSTGRES_URL"
NO_POSTGRES = f"{POSTGRES_ENV} is not set"


def postgres_base_url() -> str | None:
    """The test PostgreSQL URL, or None when the suite runs without one."""
    return os.environ.get(POSTGRES_ENV) or None


def url_in_schema(base: str, schema: str) -> str:
    """``base`` with every session's ``search_path`` set to ``schema``."""
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose sessions live in a fresh, empty schema (dropped afterwards)."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(NO_POSTGRES)
    schema = f"jcs_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield url_in_schema(base, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql("SET lock_timeout = '20s'")
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of an empty state store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'state.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An opened (migrated) state store on each backend."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
