"""A cycle with nothing to do costs little more than the CLI's start-up (issue 17): it
imports what it uses only. A store at this version's schema is opened with one read of
``alembic_version`` (alembic is not imported), rich only draws bars on a terminal, and
neither the sandbox, the report templates nor the CRM not configured are loaded. Nor is
simple-salesforce's Metadata API client (zeep, lxml, httpx: it loads when first used), nor
PyJWT with cryptography (the JWT login's; it loads when first used), the
PostgreSQL dialect for a SQLite store, or Salesforce discovery. ``status`` imports no Jira
client and ``report`` no simple-salesforce.

The checks read ``sys.modules`` of a fresh process (this one has imported everything), not
a clock: they fail on the import that came back, whatever the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory

from connectors.sandbox.server import Tls
from sync.store import open_store
from sync.store.db import alembic_config, head_revision
from tests.sync.e2e import ANCHOR, cli_env, make_sandbox, sync_env

#: What a cycle with nothing to do must not import (a module or its package).
NOT_IMPORTED = (
    "alembic",  # the schema is current: one read of alembic_version says so
    "mako",  # alembic's templates
    "jinja2",  # the report's templates
    "rich",  # bars are drawn on a terminal only
    "connectors.sandbox",
    "connectors.hubspot.connector",  # the configured CRM is Salesforce
    "sync.report",
    "zeep",  # simple-salesforce's Metadata API client, loaded when first used
    "lxml",
    "httpx",
    # PyJWT and cryptography: the JWT login only (the sandbox's is client credentials). The
    # package ``jwt`` is in sys.modules, deferred: what its code imports is not.
    "jwt.api_jwt",
    "cryptography",
    "sqlalchemy.dialects.postgresql",  # the store is SQLite
    "connectors.salesforce.discover",  # init --discover, check --online
)


def _imported(
    code: str, tmp_path: Path, name: str = "modules"
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``code`` in a fresh interpreter; the modules it had imported when it exited."""
    out = tmp_path / f"{name}.json"
    wrapper = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        + code
    )
    ran = subprocess.run(
        [sys.executable, "-c", wrapper],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return ran, json.loads(out.read_text()) if out.exists() else []


def _unwanted(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_IMPORTED)]


def test_the_head_revision_read_from_the_migration_files_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_opening_a_store_at_the_current_schema_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()  # created and migrated here
    ran, modules = _imported(
        f"from sync.store import open_store\nopen_store({url!r}).close()\n", tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "sqlalchemy" in modules, "the check did not run"
    assert [m for m in modules if m.split(".")[0] == "alembic"] == []
    assert [m for m in modules if m.startswith("sqlalchemy.dialects.postgresql")] == []


def test_a_cycle_with_nothing_to_do_imports_only_what_it_uses(tmp_path: Path, tls: Tls) -> None:
    box = make_sandbox(60, 10, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        first = env.cycle(clock=lambda: datetime.now(UTC))  # the first sync, in-process
        assert first.exit_code == 0, first.message
        argv = ["jira-crm-sync", "--config", str(env.config_path), "run", "--json"]
        code = f"import sys\nsys.argv = {argv!r}\nfrom sync.cli import main\nmain()\n"
        ran, modules = _imported(code, tmp_path)
        status = _cli(env.config_path, ["status"], tmp_path)
        report = _cli(env.config_path, ["report", "-o", str(tmp_path / "r.md")], tmp_path)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["written"] == {}, result
    assert not any(result["planned"].values()), result
    assert "sync.cycle.engine" in modules and "connectors.salesforce.connector" in modules
    assert "simple_salesforce.api" in modules, "the check did not see simple-salesforce"
    assert _unwanted(modules) == []
    assert "sync.store" in status and not [m for m in status if m.split(".")[0] == "jira"]
    assert "connectors.jira.client" not in status
    assert "sync.report" in report
    assert [m for m in report if m.split(".")[0] in ("simple_salesforce", "zeep")] == []


def _cli(config: Path, args: list[str], tmp_path: Path) -> list[str]:
    """The modules a fresh ``jira-crm-sync --config config *args`` imported (it must pass)."""
    argv = ["jira-crm-sync", "--config", str(config), *args, "-q"]
    code = f"import sys\nsys.argv = {argv!r}\nfrom sync.cli import main\nmain()\n"
    ran, modules = _imported(code, tmp_path, args[0])
    assert ran.returncode == 0, ran.stderr
    return modules


def test_simple_salesforces_metadata_api_loads_when_first_used(tmp_path: Path) -> None:
    code = """
import sys
import requests
import connectors.salesforce.client
assert "zeep" not in sys.modules, "imported before its first use"
import simple_salesforce, simple_salesforce.api as api, simple_salesforce.metadata as deferred
assert simple_salesforce.metadata is deferred
sf = simple_salesforce.Salesforce(
    instance_url="https://sf.example", session_id="s", session=requests.Session()
)
mdapi = sf.mdapi
assert "zeep" in sys.modules
import simple_salesforce.metadata as real
assert real is deferred and sys.modules["simple_salesforce.metadata"] is real
assert type(mdapi) is real.SfdcMetadataApi and api.SfdcMetadataApi is real.SfdcMetadataApi
assert real.MetadataType.__module__ == "simple_salesforce.metadata"
assert real.__file__.endswith("metadata.py")
print(mdapi.metadata_url)
"""
    ran, modules = _imported(code, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "https://sf.example/services/Soap/m/59.0/", ran.stdout
    assert "zeep.client" in modules


def test_pyjwt_loads_when_first_used(tmp_path: Path) -> None:
    code = """
import sys
import connectors.salesforce.auth
import simple_salesforce.login
assert "cryptography" not in sys.modules and "jwt.api_jwt" not in sys.modules
import jwt
assert simple_salesforce.login.jwt is jwt and connectors.salesforce.auth.jwt is jwt
import threading
key = "k" * 32
start, tokens = threading.Barrier(8), []
def first_use():  # eight threads at once: each waits for the one loading, none sees half
    start.wait()
    tokens.append(jwt.encode({"sub": "u"}, key, algorithm="HS256"))
threads = [threading.Thread(target=first_use) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert len(set(tokens)) == 1 and len(tokens) == 8, tokens
token = tokens[0]
assert jwt.decode(token, key, algorithms=["HS256"]) == {"sub": "u"}
from jwt.exceptions import PyJWTError
assert jwt.PyJWTError is PyJWTError and sys.modules["jwt"] is jwt
print(jwt.__file__)
"""
    ran, modules = _imported(code, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().endswith("jwt/__init__.py"), ran.stdout
    assert "cryptography" in modules


def test_the_salesforce_side_name_of_paging_is_the_connectors() -> None:
    from connectors.salesforce import errors, paging

    assert paging.SIDE == errors.SIDE


def test_a_postgresql_engine_gives_the_open_outbox_index_its_where() -> None:
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex

    from sync.store.db import create_engine
    from sync.store.schema import outbox

    engine = create_engine("postgresql+psycopg://u@127.0.0.1:1/none")  # no connection made
    (index,) = (i for i in outbox.indexes if i.name == "uq_outbox_open")
    for dialect in (engine.dialect, sa.create_engine("sqlite://").dialect):
        ddl = str(CreateIndex(index).compile(dialect=dialect))
        assert ddl.endswith("WHERE state <> 'done'"), (dialect.name, ddl)
