"""Config that would leak, widen or fail late is refused up front (issue 13, items 8, 9,
11, 17 and 19), through the real CLI: an http:// URL that would carry credentials, a
[jira] jql clause that closes the scope's parentheses, a bad or busy [serve] listen, a
state-store URL whose driver is not installed; and the SQLite state store is private to
its user, with `check` warning when it is not."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.config_file import sandbox_config_text
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Endpoints, Sandbox
from sync.cli import app
from sync.store import open_store
from tests.sync.e2e import ANCHOR, SyncEnv, calls, make_sandbox, reset_calls


def invoke(*args: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result.exit_code, result.stdout, result.stderr


def the_line(text: str, *parts: str) -> str:
    """The one line of ``text`` holding every part."""
    found = [line for line in text.splitlines() if all(p in line for p in parts)]
    assert len(found) == 1, text
    return found[0]


def offline_config(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A valid config whose remotes are loopback ports nobody serves, with ``edits``."""
    box = Sandbox(issues=2, accounts=1, seed=1)
    box.endpoints = Endpoints("https://127.0.0.1:9", "https://127.0.0.1:10", None)
    text = sandbox_config_text(box, f"sqlite:///{tmp_path / 'state.db'}")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """`serve` installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


# -- item 8: credentials never travel over http:// ----------------------------------------


@contextmanager
def plain_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A plain TCP listener on loopback; yields its port and what any client sent."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(65536) or b"(connected, sent nothing)")
                except OSError:
                    received.append(b"(connected)")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize(
    ("old", "key", "carried"),
    [
        ('url = "https://127.0.0.1:9"', "jira.url", "the API token"),
        ('login_url = "https://127.0.0.1:10"', "crm.salesforce.login_url", "the password"),
        ('instance_url = "https://127.0.0.1:10"', "crm.salesforce.instance_url", "session"),
    ],
)
def test_an_http_url_is_refused_and_nothing_is_sent(
    tmp_path: Path, old: str, key: str, carried: str
) -> None:
    with plain_listener() as (port, received):
        scheme_host = old.split('"')[1]
        config = offline_config(
            tmp_path, (old, old.replace(scheme_host, f"http://127.0.0.1:{port}"))
        )
        code, out, err = invoke("--config", str(config), "run")
        assert code == 2 and out == ""
        the_line(err, f"{key}: starts with http://", carried, "clear text", "write https://")
        code, out, err = invoke("--config", str(config), "check", "--online")
        assert code == 2
        the_line(out, f"FAIL  config: {key}: starts with http://", "write https://")
    assert received == [], received  # not a connection, not a request line


# -- item 9: the extra JQL clause cannot widen the scope ----------------------------------


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = make_sandbox(60, 8, seed=4, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("guards-box"), tls=tls)
    yield sandbox
    sandbox.stop()


def test_an_unbalanced_jql_clause_is_refused_before_any_call(box: Sandbox, tmp_path: Path) -> None:
    env = SyncEnv(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls=None)
    try:
        projects = [p.key for p in box.world.projects]
        assert len(projects) > 1
        text = env.config_path.read_text(encoding="utf-8")
        listed = "projects = [" + ", ".join(f'"{key}"' for key in projects) + "]"
        text = text.replace(listed, f'projects = ["{projects[0]}"]')
        text = text.replace('jql = ""', 'jql = "status != Done) OR (project is not EMPTY"')
        env.config_path.write_text(text, encoding="utf-8")
        reset_calls(box)
        code, out, err = invoke("--config", str(env.config_path), "run")
        assert code == 2 and out == ""
        the_line(err, "[jira] jql: the ) at character 15 closes a ( that was never opened")
        code, out, _ = invoke("--config", str(env.config_path), "check")
        assert code == 2
        the_line(out, "FAIL  config: [jira] jql:", "widen the search beyond [jira] projects")
        assert calls(box).reads == calls(box).writes == 0  # no other project was read
    finally:
        env.close()


# -- item 17: [serve] listen is checked on load, and a busy port is a config problem -----


@pytest.mark.parametrize(
    "listen", ["bogus", "127.0.0.1:", "127.0.0.1:99999", "::1:9465", "[nope]:9465", "a b:80"]
)
def test_a_bad_listen_address_fails_check_and_serve(tmp_path: Path, listen: str) -> None:
    config = offline_config(tmp_path, ('listen = "127.0.0.1:9465"', f'listen = "{listen}"'))
    code, out, _ = invoke("--config", str(config), "check")
    assert code == 2
    the_line(out, "FAIL  config: serve.listen:", "write host:port, like 127.0.0.1:9465")
    code, out, err = invoke("--config", str(config), "serve", "--cycles", "1")
    assert code == 2 and out == ""
    the_line(err, "serve.listen:", "write host:port")
    assert not (tmp_path / "state.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("listen", ["127.0.0.1:9465", "[::1]:9465", "localhost:80", "0.0.0.0:1"])
def test_good_listen_addresses_load(tmp_path: Path, listen: str) -> None:
    config = offline_config(tmp_path, ('listen = "127.0.0.1:9465"', f'listen = "{listen}"'))
    code, out, _ = invoke("--config", str(config), "check")
    assert code == 0, out


def test_a_port_in_use_is_a_config_error_naming_listen(
    tmp_path: Path, restore_signals: None
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        listen = f"127.0.0.1:{port}"
        config = offline_config(tmp_path, ('listen = "127.0.0.1:9465"', f'listen = "{listen}"'))
        code, out, err = invoke("--config", str(config), "serve", "--cycles", "1")
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line == (
        f"jira-crm-sync: cannot listen on {listen} (address in use: another process holds "
        "that port); change [serve] listen"
    )


# -- item 19: the PostgreSQL driver comes with the product; a missing one is named --------


def test_psycopg_is_installed_with_the_product_not_only_for_tests() -> None:
    requires = importlib.metadata.requires("jira-crm-sync") or []
    runtime = [r for r in requires if r.startswith("psycopg") and "extra ==" not in r]
    assert runtime, requires


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("postgresql+psycopg2://sync@127.0.0.1:1/state", "psycopg2-binary"),
        ("postgresql+pg8000://sync@127.0.0.1:1/state", "pg8000"),
    ],
)
def test_a_missing_database_driver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, package: str
) -> None:
    for module in ("psycopg2", "pg8000"):  # absent, whatever this machine has installed
        monkeypatch.setitem(sys.modules, module, None)
    config = offline_config(
        tmp_path, (f'url = "sqlite:///{tmp_path / "state.db"}"', f'url = "{url}"')
    )
    fix = f"pip install '{package}'"
    code, out, _ = invoke("--config", str(config), "check")
    assert code == 2
    the_line(out, "FAIL  state store:", "not installed", fix, "postgresql+psycopg://")
    for command in (["run"], ["db", "upgrade"], ["status"]):
        code, out, err = invoke("--config", str(config), *command)
        assert code == 2, (command, out, err)
        (line,) = err.strip().splitlines()
        assert line.startswith("jira-crm-sync: ") and fix in line, (command, line)


def test_an_unsupported_database_is_named(tmp_path: Path) -> None:
    config = offline_config(
        tmp_path,
        (f'url = "sqlite:///{tmp_path / "state.db"}"', 'url = "mysql+pymysql://u@h/db"'),
    )
    code, out, _ = invoke("--config", str(config), "check")
    assert code == 2
    the_line(out, "FAIL  state store:", "is not supported", "postgresql+psycopg://")
    code, _, err = invoke("--config", str(config), "run")
    assert code == 2
    the_line(err, "unsupported state database", "postgresql+psycopg://")


# -- item 11: the SQLite state store is readable by its user only -------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_store_is_created_private_and_check_warns_when_it_is_not(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state-dir" / "state.db"
    config = offline_config(
        tmp_path, (f'url = "sqlite:///{tmp_path / "state.db"}"', f'url = "sqlite:///{state}"')
    )
    umask = os.umask(0o022)  # the usual umask, under which SQLite would create 0644
    try:
        code, out, err = invoke("--config", str(config), "db", "upgrade")
        assert code == 0, out + err
        assert _mode(state) == 0o600
        assert _mode(state.parent) == 0o700
        store = open_store(f"sqlite:///{state}")
        try:
            with store.transaction() as tx:  # a write in WAL mode: -wal and -shm exist
                tx.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
                wal, shm = Path(f"{state}-wal"), Path(f"{state}-shm")
                assert wal.exists() and shm.exists()
                assert _mode(wal) == 0o600 and _mode(shm) == 0o600
        finally:
            store.close()
    finally:
        os.umask(umask)

    code, out, _ = invoke("--config", str(config), "check")
    assert code == 0 and "state store permissions" not in out, out
    state.chmod(0o644)
    code, out, _ = invoke("--config", str(config), "check")
    assert code == 0, out  # a warning, as for the config file
    the_line(
        out,
        "WARN  state store permissions:",
        f"{state} is open to other users (mode 0644); run chmod 600 {state}",
    )
