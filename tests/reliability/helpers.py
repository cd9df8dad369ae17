"""Helpers of the reliability suite: the real CLI in-process (typer's CliRunner on
``sync.cli.app``), the one-line error every failure must end in, and the state store's
cursors as a comparable value."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner, Result

from sync.cli import app
from sync.store import Store
from sync.store.schema import cursors

PREFIX = "jira-crm-sync: "


def cli(config: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """``jira-crm-sync --config <config> <args>`` through the real entry point."""
    return CliRunner().invoke(app, ["--config", config, *args], env=env)


def one_error_line(result: Result, code: int) -> str:
    """Assert the run exited ``code`` with no traceback and exactly one line on stderr,
    ours; returns that line (without the prefix)."""
    output = result.stdout + result.stderr
    assert result.exit_code == code, output
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(
        result.exception
    )
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0][len(PREFIX) :]


def cursor_values(store: Store, source: str | None = None) -> dict[tuple[str, str], Any]:
    """Every cursor of the store (of one source), as ``{(source, object): value}``."""
    query = sa.select(cursors.c.source, cursors.c.object, cursors.c.value)
    if source is not None:
        query = query.where(cursors.c.source == source)
    with store.read() as conn:
        return {(row.source, row.object): row.value for row in conn.execute(query)}
