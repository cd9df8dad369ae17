"""Jira's serverInfo and field list, read once and cached for hours, through the engine
in-process against the HTTPS sandbox: a garbled answer is never cached and never turns
into a config error (exit 2, which a systemd unit does not restart after). A field list
the configured fields do not resolve in is read once more before it is called a config
error; an answer that is not a field list or not a serverInfo is a remote one (exit 3);
the next clean cycle succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.jira.fields import FieldCatalog
from connectors.sandbox.faults import Fault
from connectors.sandbox.schema import JIRA_ACCOUNT_FIELD_ID, JIRA_ACCOUNT_FIELD_NAME
from connectors.sandbox.server import Tls
from sync.remote import METADATA_MAX_AGE
from sync.store import repo
from tests.sync.e2e import SyncEnv, calls, in_process_env

FIELD = "jira GET /rest/api/2/field"
SERVER_INFO = "jira GET /rest/api/2/serverInfo"
#: A proxy or a half-deployed site answering /field with every name replaced.
GARBLED_NAMES = {"kind": "rewrite", "endpoint": "/field", "set": {"*.name": "Garbled"}}


@pytest.fixture
def env(tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls, issues=60) as e:
        yield e


def inject(env: SyncEnv, spec: dict[str, Any], count: int = 1) -> None:
    env.box.jira_app.faults.add(Fault.from_json({**spec, "count": count}))


def cached(env: SyncEnv, key: str) -> Any:
    with env.store.read() as conn:
        return repo.cache_get(conn, key, env.clock(), METADATA_MAX_AGE)


def resolves(fields: Any) -> bool:
    """Whether the configured account field resolves in a field list."""
    return bool(fields) and FieldCatalog(fields).resolve(JIRA_ACCOUNT_FIELD_NAME) == (
        JIRA_ACCOUNT_FIELD_ID
    )


def test_a_garbled_field_list_is_read_again_before_it_is_a_config_error(env: SyncEnv) -> None:
    inject(env, GARBLED_NAMES)
    result = env.cycle()
    assert result.exit_code == 0, result.message
    assert calls(env.box).count(FIELD) == 2
    assert resolves(cached(env, "jira:fields"))


def test_a_cached_field_list_without_the_configured_fields_is_read_again(env: SyncEnv) -> None:
    """What an earlier version cached from a garbled answer: every run for 12 hours
    exited 2 while `check --online` (which reads afresh) said OK."""
    assert env.cycle().exit_code == 0
    good = cached(env, "jira:fields")
    with env.store.transaction() as tx:
        repo.cache_put(tx, "jira:fields", [{**f, "name": "Garbled"} for f in good], env.clock())
    env.clock.advance(minutes=10)
    result = env.cycle()
    assert result.exit_code == 0, result.message
    assert calls(env.box).count(FIELD) == 1
    assert cached(env, "jira:fields") == good


def test_a_field_list_garbled_twice_is_a_config_error_that_is_not_cached(env: SyncEnv) -> None:
    inject(env, GARBLED_NAMES, count=2)
    result = env.cycle()
    assert result.exit_code == 2, result.message
    assert f'no field named "{JIRA_ACCOUNT_FIELD_NAME}"' in result.message
    assert calls(env.box).count(FIELD) == 2
    assert cached(env, "jira:fields") is None
    again = env.cycle()
    assert again.exit_code == 0, again.message


NOT_A_FIELD_LIST = {
    "empty-200": ({"kind": "empty", "endpoint": "/field"}, "an empty body"),
    "login-page-200": ({"kind": "html", "status": 200, "endpoint": "/field"}, "not JSON"),
    "ids-removed": (
        {"kind": "rewrite", "endpoint": "/field", "remove": ["*.id"]},
        "a field without an id",
    ),
    "ids-rewritten": (
        {"kind": "rewrite", "endpoint": "/field", "set": {"*.id": "customfield_1"}},
        "without the system fields summary, status, issuetype, updated",
    ),
}


@pytest.mark.parametrize(("spec", "says"), NOT_A_FIELD_LIST.values(), ids=NOT_A_FIELD_LIST.keys())
def test_an_answer_that_is_not_a_field_list_is_a_remote_error(
    env: SyncEnv, spec: dict[str, Any], says: str
) -> None:
    inject(env, spec)
    result = env.cycle()
    assert result.exit_code == 3, result.message
    assert result.message.startswith("jira: ") and "GET /rest/api/2/field" in result.message
    assert says in result.message
    assert cached(env, "jira:fields") is None
    again = env.cycle()
    assert again.exit_code == 0, again.message
    assert resolves(cached(env, "jira:fields"))


NOT_A_SERVER_INFO = {
    "no-deployment-type": (
        {"kind": "rewrite", "endpoint": "/serverInfo", "remove": ["deploymentType"]},
        1,
        "without deploymentType; nothing was cached; the next cycle tries again; if it "
        'persists, set [jira] deployment = "cloud" or "server"',
    ),
    # The client asks three more times when serverInfo comes back empty (JRA-59676).
    "empty-200": ({"kind": "empty", "endpoint": "/serverInfo"}, 4, "an empty document"),
}


@pytest.mark.parametrize(
    ("spec", "count", "says"), NOT_A_SERVER_INFO.values(), ids=NOT_A_SERVER_INFO.keys()
)
def test_an_unreadable_server_info_is_a_remote_error_not_server(
    env: SyncEnv, spec: dict[str, Any], count: int, says: str
) -> None:
    """With deployment = "auto" it decides cloud or server: taken as Server and cached,
    every run for hours would page a Cloud site with the removed /search."""
    env.edit_config('deployment = "cloud"', 'deployment = "auto"')
    inject(env, spec, count)
    result = env.cycle()
    assert result.exit_code == 3, result.message
    assert "GET /rest/api/2/serverInfo" in result.message and says in result.message
    assert calls(env.box).count(SERVER_INFO) == count
    assert cached(env, "jira:facts") is None
    again = env.cycle()
    assert again.exit_code == 0, again.message
    assert cached(env, "jira:facts")["deployment"] == "cloud"


def test_a_declared_deployment_does_not_need_deployment_type(env: SyncEnv) -> None:
    """deployment = "cloud" in the config: a serverInfo without deploymentType is read as
    configured (it was a config error: "reports deploymentType Server")."""
    inject(env, NOT_A_SERVER_INFO["no-deployment-type"][0])
    result = env.cycle()
    assert result.exit_code == 0, result.message
    assert cached(env, "jira:facts")["deployment"] == "cloud"
