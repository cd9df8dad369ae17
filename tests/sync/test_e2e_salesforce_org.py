"""Issue 14 through the real CLI over HTTPS: an org that refuses REST for the integration
user stops the run with exit 3 and one line saying what an admin must change (not an
"expired token"); account owners' names reach the state store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.store import repo
from tests.sync.e2e import ANCHOR, SyncEnv, calls, cli_in_process, make_sandbox, reset_calls


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = make_sandbox(60, 12, seed=6, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("org-box"), tls=tls)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def env(box: Sandbox, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    opened = SyncEnv(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls=None)
    yield opened
    opened.close()
    assert box.endpoints is not None
    requests.post(
        f"{box.endpoints.salesforce_url}/_sandbox/reset", verify=str(tls.ca_path), timeout=30
    )


def test_an_org_refusing_rest_exits_3_saying_what_to_change(env: SyncEnv, tls: Tls) -> None:
    assert env.box.endpoints is not None
    requests.post(
        f"{env.box.endpoints.salesforce_url}/_sandbox/user",
        json={"api_enabled": False},
        verify=str(tls.ca_path),
        timeout=30,
    ).raise_for_status()
    reset_calls(env.box)
    code, _, err = cli_in_process(env, "run")
    assert code == 3 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "not valid for use with the REST API" in x]
    assert "'api'" in line and "API Enabled" in line and "IP Relaxation" in line
    assert "expired" not in line
    seen = calls(env.box)
    logins = seen.count("salesforce POST /services/oauth2/token")
    logins += seen.count("salesforce POST /services/Soap/u/{version}")
    assert logins == 1  # no loop of re-logins


def test_account_owner_names_reach_the_state_store(env: SyncEnv) -> None:
    code, _, err = cli_in_process(env, "run")
    assert code in (0, 1), err
    users = {u["Id"]: u["Name"] for u in env.box.salesforce.records("User")}
    with env.store.read() as conn:
        stored = [a.data for a in repo.iter_customers(conn)]
    # Stored in the neutral form the connector hands over.
    assert stored and all(a["owner_name"] == users[a["owner_id"]] for a in stored)
