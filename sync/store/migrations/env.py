"""Alembic environment for the state store.

Run through :func:`sync.store.db.upgrade`, which passes an open connection in
``config.attributes["connection"]``; with the ``alembic`` command line, a URL in
``sqlalchemy.url`` (or ``-x url=...``) is used instead. Offline mode renders SQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from sync.store.schema import metadata

config = context.config


def _url() -> str:
    from sync.store.db import default_url

    return context.get_x_argument(as_dictionary=True).get("url") or (
        config.get_main_option("sqlalchemy.url") or default_url()
    )


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        from sync.store.db import create_engine

        engine = create_engine(_url())
        try:
            with engine.begin() as conn:
                _run(conn)
        finally:
            engine.dispose()
