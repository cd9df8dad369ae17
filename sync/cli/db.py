"""``jira-crm-sync db upgrade``: the state store's migrations."""

from __future__ import annotations

import typer

from sync.cli.common import load_config
from sync.cli.output import fail, output
from sync.exitcodes import exit_for


def upgrade(ctx: typer.Context) -> None:
    """Apply state-store migrations (also done automatically on an empty database)."""
    from sync.store import StoreError, current_revision, head_revision
    from sync.store import upgrade as migrate
    from sync.store.db import create_engine

    config = load_config(ctx)
    try:
        engine = create_engine(config.state.url)
    except StoreError as exc:  # e.g. a driver that is not installed: say what to install
        fail(exit_for(exc), str(exc))
    try:
        before = current_revision(engine)
        migrate(engine)
        output(ctx).line(
            f"state store at revision {current_revision(engine)} "
            f"(was {before or 'empty'}; newest {head_revision()})"
        )
    finally:
        engine.dispose()
