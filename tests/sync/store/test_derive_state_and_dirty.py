"""Derive state and dirty marks: a derive clears exactly the marks it read, so a mark made
while it ran survives; the derive state of each scope is replaced, never merged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sync.store import Store, repo

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_a_mark_made_during_a_derive_survives_its_clearing(store: Store) -> None:
    with store.transaction() as tx:
        assert repo.mark_dirty(tx, ["BETA", "ALPHA", "ALPHA"], at=T0) == 2
    with store.read() as conn:
        read = repo.dirty_marks(conn)  # what a derive starts from
    assert [m.project_key for m in read] == ["ALPHA", "BETA"]

    with store.transaction() as tx:  # a pull stores more of ALPHA meanwhile
        repo.mark_dirty(tx, ["ALPHA"], at=T0 + timedelta(minutes=5))
    with store.transaction() as tx:
        assert repo.clear_dirty(tx, read) == 1  # BETA's only

    with store.read() as conn:
        [alpha] = repo.waiting_projects(conn)
        [mark] = repo.dirty_marks(conn)
    # Never clean since the first mark: two marks, waiting since then.
    assert (alpha.project_key, alpha.marks) == ("ALPHA", 2)
    assert (alpha.since, alpha.last_marked_at) == (T0, T0 + timedelta(minutes=5))
    with store.transaction() as tx:
        assert repo.clear_dirty(tx, [mark]) == 1
    with store.read() as conn:
        assert repo.waiting_projects(conn) == [] and repo.dirty_marks(conn) == []


def test_a_stale_mark_never_clears_a_newer_one(store: Store) -> None:
    with store.transaction() as tx:
        repo.mark_dirty(tx, ["ALPHA"], at=T0)
    with store.read() as conn:
        old = repo.dirty_marks(conn)
    with store.transaction() as tx:
        repo.clear_dirty(tx, old)
        repo.mark_dirty(tx, ["ALPHA"], at=T0 + timedelta(hours=1))  # clean, then dirty again
    with store.transaction() as tx:
        assert repo.clear_dirty(tx, old) == 0  # e.g. a second clearing of the same derive
    with store.read() as conn:
        [alpha] = repo.waiting_projects(conn)
    assert (alpha.marks, alpha.since) == (1, T0 + timedelta(hours=1))


def test_marks_and_clearing_nothing(store: Store) -> None:
    with store.transaction() as tx:
        assert repo.mark_dirty(tx, []) == 0
        assert repo.clear_dirty(tx, []) == 0
    with store.read() as conn:
        assert repo.dirty_marks(conn) == []


def test_derive_state_is_saved_per_scope(store: Store) -> None:
    today, digest = date(2026, 12, 1), "0123456789abcdef"
    with store.transaction() as tx:
        saved = {"*": repo.DeriveState(today, digest), "ALPHA": repo.DeriveState(today, "x")}
        assert repo.save_derive_states(tx, saved, at=T0) == 2
        assert repo.save_derive_states(tx, {}) == 0
    with store.transaction() as tx:
        later = {"ALPHA": repo.DeriveState(today + timedelta(days=1), digest)}
        repo.save_derive_states(tx, later, at=T0 + timedelta(days=1))
    with store.read() as conn:
        assert repo.derive_states(conn, ["*", "ALPHA", "BETA"]) == {
            "*": repo.DeriveState(today, digest),
            "ALPHA": repo.DeriveState(today + timedelta(days=1), digest),
        }
        listed = [(s.scope, s.updated_at) for s in repo.all_derive_states(conn)]
        # Derive state is not a cursor: it is kept apart from them.
        assert repo.all_cursors(conn) == []
    assert listed == [("*", T0), ("ALPHA", T0 + timedelta(days=1))]
