"""Migration 0005 on a store written by the schema before it (revision 0004), where the
derive state and the dirty marks were rows of ``cursors``: they move to tables of their
own, mean to the engine what they meant, and a downgrade puts them back. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from sync.cycle.derive import projects_to_derive
from sync.cycle.pull import Changes
from sync.store import current_revision, head_revision, open_store, repo, upgrade
from sync.store.db import alembic_config, create_engine
from sync.store.schema import cursors

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
DIGEST = "0123456789abcdef"
DAY = date(2026, 12, 1)

#: Real cursors: they stay where they are.
CURSORS = {
    ("jira", "issues:*"): {"updated_ms": 1764568800000, "keys": ["ALPHA-1"]},
    ("jira", "key_scan:*"): "2026-12-01T05:00:00+00:00",
    ("salesforce", "Account"): {"at": "2026-12-01T05:59:00Z", "last_id": "001000000000001AAA"},
}


def _rows_of_0004() -> list[dict[str, Any]]:
    """``cursors`` as the code before 0005 left it after a crash between a pull and its
    derive: cursors, the engine's derive state of the whole scope and of one project a
    worker held, one state it cannot read, and dirty marks (two for ALPHA, from two pull
    transactions; BETA's from the first of them)."""
    rows = [
        {"source": s, "object": o, "value": v, "updated_at": T0} for (s, o), v in CURSORS.items()
    ]
    rows += [
        {
            "source": "engine",
            "object": "derived:*",
            "value": {"day": DAY.isoformat(), "rules": DIGEST},
            "updated_at": T0 + timedelta(minutes=1),
        },
        {
            "source": "engine",
            "object": "derived:ALPHA",
            "value": {"day": "2026-11-30", "rules": "fedcba9876543210"},
            "updated_at": T0 - timedelta(days=1),
        },
        {
            "source": "engine",
            "object": "derived:GAMMA",
            "value": {"day": "not a day"},
            "updated_at": T0,
        },
    ]
    marks = [
        ("ALPHA", "aaaaaaaaaaaa", 10),
        ("BETA", "aaaaaaaaaaaa", 10),
        ("ALPHA", "bbbbbbbbbbbb", 20),
    ]
    rows += [
        {
            "source": "dirty",
            "object": f"{project}|{token}",
            "value": project,
            "updated_at": T0 + timedelta(minutes=minutes),
        }
        for project, token, minutes in marks
    ]
    return rows


@pytest.fixture
def at_0004(store_url: str) -> Iterator[Engine]:
    """An engine on a store at revision 0004 holding :func:`_rows_of_0004`."""
    engine = create_engine(store_url)
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:
            conn.execute(sa.insert(cursors), _rows_of_0004())
        yield engine
    finally:
        engine.dispose()


def _cursor_rows(engine: Engine) -> dict[tuple[str, str], tuple[Any, datetime]]:
    with engine.connect() as conn:
        return {
            (r.source, r.object): (r.value, r.updated_at) for r in conn.execute(sa.select(cursors))
        }


def test_upgrade_moves_derive_state_and_dirty_marks_out_of_cursors(
    at_0004: Engine, store_url: str
) -> None:
    upgrade(at_0004)
    assert current_revision(at_0004) == head_revision()
    store = open_store(store_url)
    try:
        with store.read() as conn:
            assert {(c.source, c.object): c.value for c in repo.all_cursors(conn)} == CURSORS
            assert repo.derive_states(conn, ["*", "ALPHA", "GAMMA"]) == {
                "*": repo.DeriveState(DAY, DIGEST),
                "ALPHA": repo.DeriveState(date(2026, 11, 30), "fedcba9876543210"),
            }
            [every, alpha] = repo.all_derive_states(conn)
            assert (every.scope, every.updated_at) == ("*", T0 + timedelta(minutes=1))
            assert (alpha.scope, alpha.updated_at) == ("ALPHA", T0 - timedelta(days=1))
            waiting = [
                (p.project_key, p.marks, p.since, p.last_marked_at)
                for p in repo.waiting_projects(conn)
            ]
            assert waiting == [
                ("ALPHA", 2, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)),
                ("BETA", 1, T0 + timedelta(minutes=10), T0 + timedelta(minutes=10)),
            ]
            marks = repo.dirty_marks(conn)
        assert [m.project_key for m in marks] == ["ALPHA", "BETA"]

        # The engine reads them as it read the rows of cursors: the whole scope was
        # derived today under these rules, so only the marked projects are derived ...
        assert projects_to_derive(store, Changes(), DAY, DIGEST, full=False, held=None) == (
            ["ALPHA", "BETA"],
            {},
        )
        # ... and a new day derives everything, saving the new state after.
        tomorrow = DAY + timedelta(days=1)
        assert projects_to_derive(store, Changes(), tomorrow, DIGEST, full=False, held=None) == (
            None,
            {"*": repo.DeriveState(tomorrow, DIGEST)},
        )
        # A worker holding ALPHA (derived yesterday under other rules) derives it whole.
        held = projects_to_derive(store, Changes(), DAY, DIGEST, full=False, held=["ALPHA"])
        assert held == (["ALPHA"], {"ALPHA": repo.DeriveState(DAY, DIGEST)})

        # A derive that covered the marks it read clears them.
        with store.transaction() as tx:
            assert repo.clear_dirty(tx, marks) == 2
        with store.read() as conn:
            assert repo.waiting_projects(conn) == []
    finally:
        store.close()


def test_downgrade_puts_them_back_into_cursors(at_0004: Engine) -> None:
    before = _cursor_rows(at_0004)
    upgrade(at_0004)
    with at_0004.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    assert current_revision(at_0004) == "0004"
    after = _cursor_rows(at_0004)

    # Cursors and readable derive states are as they were; each dirty project has one
    # mark again, from when it was first marked (the derive it waits for is the same).
    unreadable = ("engine", "derived:GAMMA")
    merged_alpha = ("dirty", "ALPHA|aaaaaaaaaaaa")
    kept = {k: v for k, v in before.items() if k not in (unreadable, merged_alpha)}
    kept[("dirty", "ALPHA|bbbbbbbbbbbb")] = ("ALPHA", T0 + timedelta(minutes=10))
    assert after == kept

    upgrade(at_0004)  # and up again: the same projects wait, the same state is kept
    with at_0004.connect() as conn:
        assert [(m.project_key, m.token) for m in repo.dirty_marks(conn)] == [
            ("ALPHA", "bbbbbbbbbbbb"),
            ("BETA", "aaaaaaaaaaaa"),
        ]
        assert set(repo.derive_states(conn, ["*", "ALPHA"])) == {"*", "ALPHA"}
        assert {(c.source, c.object) for c in repo.all_cursors(conn)} == set(CURSORS)


def test_an_empty_store_of_0004_upgrades(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        upgrade(engine, "0004")
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert repo.all_derive_states(conn) == []
            assert repo.dirty_marks(conn) == []
    finally:
        engine.dispose()
