"""A directory of connections (sync.connections): names from the files, each connection's
state in its own namespace (a PostgreSQL schema, a SQLite file), broken files reported and
skipped, `--connection NAME` through the real CLI's options. No remote, no database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.connections import (
    ConnectionsError,
    ensure_namespace,
    find_connection,
    load_directory,
    namespaced_url,
    schema_name,
)
from sync.store import StoreError
from tests.sync.conftest import NO_POSTGRES, postgres_base_url

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
PG = "postgresql+psycopg://sync:s3cret@db.internal:5432/jira_crm_sync"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JIRA_API_TOKEN", "jira-secret")
    monkeypatch.setenv("SALESFORCE_CONSUMER_KEY", "ck-secret")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def _connection(directory: Path, name: str, state: str | None) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    line = 'url = "sqlite:///jira-crm-sync.db"'
    assert line in text
    text = text.replace(line, "" if state is None else f'url = "{state}"')
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_postgresql_connection_gets_its_own_schema() -> None:
    assert namespaced_url(PG, "acme-eu") == f"{PG}?options=-csearch_path%3Djcs_acme_eu"
    # a URL that names a schema already: the connection's is beside it, named after it
    given = f"{PG}?options=-csearch_path%3Dsync -cstatement_timeout%3D5000"
    assert namespaced_url(given, "acme") == (
        f"{PG}?options=-cstatement_timeout%3D5000+-csearch_path%3Dsync_acme"
    )
    assert schema_name("a-b", "base") == "base_a_b"


def test_each_sqlite_connection_gets_its_own_file(tmp_path: Path) -> None:
    assert namespaced_url(None, "acme") == f"sqlite:///{tmp_path / 'xdg' / 'jira-crm-sync'}/acme.db"
    assert namespaced_url("sqlite:////var/lib/a.db", "acme") == "sqlite:////var/lib/a.db"


def test_a_directory_loads_every_file_and_reports_the_broken_ones(tmp_path: Path) -> None:
    _connection(tmp_path, "alpha", PG)
    _connection(tmp_path, "beta", PG)
    _connection(tmp_path, "Bad Name", PG)
    _connection(tmp_path, "one", f"sqlite:///{tmp_path / 'shared.db'}")
    _connection(tmp_path, "two", f"sqlite:///{tmp_path / 'shared.db'}")
    (tmp_path / "typo.toml").write_text("[jira]\nurl = 42\n", encoding="utf-8")
    found = load_directory(tmp_path)
    assert [c.name for c in found.connections] == ["alpha", "beta", "one"]
    alpha = found.connections[0]
    assert alpha.base_url == PG
    assert str(alpha.config.state.url).endswith("search_path%3Djcs_alpha")
    broken = {b.name: b.reason for b in found.broken}
    assert set(broken) == {"Bad Name", "two", "typo"}
    assert "rename the file" in broken["Bad Name"]
    assert "connection 'one'" in broken["two"] and "its own [state] url" in broken["two"]
    assert "typo.toml" in broken["typo"] and "jira" in broken["typo"]
    assert all("s3cret" not in reason for reason in broken.values())
    assert found.names() == ["Bad Name", "alpha", "beta", "one", "two", "typo"]


def test_a_missing_directory_or_connection_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConnectionsError, match="no such directory"):
        load_directory(tmp_path / "nope")
    with pytest.raises(ConnectionsError, match=r"no \*\.toml"):
        load_directory(tmp_path)
    _connection(tmp_path, "alpha", PG)
    with pytest.raises(ConnectionsError, match=r"no connection 'gamma' .*connections there: alpha"):
        find_connection(tmp_path, "gamma")
    with pytest.raises(ConnectionsError, match="JIRA_CRM_SYNC_CONNECTIONS"):
        find_connection(None, "alpha")


def test_the_cli_takes_connection_before_or_after_the_command(tmp_path: Path) -> None:
    _connection(tmp_path, "alpha", f"sqlite:///{tmp_path / 'alpha.db'}")
    runner = CliRunner()
    for args in (
        ["--connections", str(tmp_path), "--connection", "alpha", "status", "--json"],
        ["status", "--json", "--connections", str(tmp_path), "--connection", "alpha"],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert '"runs": []' in done.output  # alpha's own store: nothing ran there yet
    missing = runner.invoke(app, ["--connections", str(tmp_path), "status", "--connection", "x"])
    assert missing.exit_code == 2 and "no connection 'x'" in missing.output
    both = runner.invoke(
        app,
        [
            "--config",
            str(EXAMPLE),
            "--connections",
            str(tmp_path),
            "--connection",
            "alpha",
            "status",
        ],
    )
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.postgres
def test_a_schema_the_server_refuses_to_create_is_a_store_error() -> None:
    base = postgres_base_url()
    if base is None:
        pytest.skip(NO_POSTGRES)
    # "pg_" schemas are reserved: the server refuses to create one, as it would refuse a
    # user without CREATE on the database.
    url = namespaced_url(f"{base}?options=-csearch_path%3Dpg_reserved", "alpha")
    said = r"cannot create the schema pg_reserved_alpha .*reserved.*grant CREATE"
    with pytest.raises(StoreError, match=said):
        ensure_namespace(url)
