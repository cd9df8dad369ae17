"""Building, connecting and resolving fields: no I/O in constructors, clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import AuthError, ConfigError, UnreachableError
from connectors.jira import JiraSettings, build_client, jira_meter, open_jira
from connectors.jira.fields import FieldCatalog
from connectors.sandbox.schema import (
    JIRA_ACCOUNT_FIELD_ID,
    JIRA_DUPLICATE_FIELD_IDS,
    JIRA_DUPLICATE_FIELD_NAME,
)
from connectors.sandbox.server import make_tls
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, connector_for


@pytest.fixture
def box() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(issues=50, accounts=5, seed=1, anchor=ANCHOR)
    with sandbox.in_process() as ends:
        yield sandbox, ends.jira_url


def test_building_makes_no_call() -> None:
    meter = jira_meter()
    settings = JiraSettings(
        url="https://nowhere.invalid", email="a@b.c", api_token="t", projects=("X",)
    )
    connector = open_jira(settings, meter)
    assert meter.total == 0
    assert connector.client.max_retries == 3
    assert connector.client.timeout == 30.0
    assert connector.client.auth == ("a@b.c", "t")


def test_server_settings_use_the_personal_access_token() -> None:
    settings = JiraSettings(
        url="https://jira.example.com", personal_access_token="pat", projects=("X",),
        deployment="server", max_retries=5,
    )  # fmt: skip
    client = build_client(settings)
    assert client.auth is not None
    assert not isinstance(client.auth, tuple)
    assert client.max_retries == 5
    assert not client.is_cloud


def test_settings_hide_secrets_and_validate() -> None:
    settings = JiraSettings(
        url="https://x.atlassian.net", email="a@b.c", api_token="s3cr3t", projects=("X",)
    )
    assert "s3cr3t" not in repr(settings)
    with pytest.raises(ConfigError, match="scope"):
        JiraSettings(url="https://x.atlassian.net", email="a@b.c", api_token="t")
    with pytest.raises(ConfigError, match="no credentials"):
        JiraSettings(url="https://x.atlassian.net", projects=("X",))
    with pytest.raises(ConfigError, match="url"):
        JiraSettings(url="x.atlassian.net", email="a@b.c", api_token="t", projects=("X",))


def test_cloud_detected_from_server_info(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    connector = connector_for(sandbox, url)
    assert not connector.client.is_cloud  # nothing known before connecting
    facts = connector.connect()
    assert facts.deployment == "cloud" and connector.client.is_cloud
    assert facts.time_zone == "Asia/Shanghai"
    assert facts.user == sandbox.jira.me.account_id
    connector.connect()
    assert sandbox.jira_app.stats.snapshot()["total"] == 2  # serverInfo and myself, once


def test_declared_deployment_that_disagrees_is_a_config_error(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    with pytest.raises(ConfigError, match="deployment"):
        connector_for(sandbox, url, deployment="server").connect()


def test_wrong_api_token_is_an_auth_error_without_the_token(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    secret = "wrong-token-Zx81"
    connector = connector_for(sandbox, url, api_token=secret)
    with pytest.raises(AuthError) as caught:
        connector.connect()
    message = str(caught.value)
    assert secret not in message
    assert "api_token" in message and "401" in message
    assert caught.value.__cause__ is None


def test_wrong_personal_access_token_names_it() -> None:
    sandbox = Sandbox(issues=10, accounts=5, seed=1, jira_mode="server", anchor=ANCHOR)
    with sandbox.in_process() as ends:
        connector = connector_for(sandbox, ends.jira_url, personal_access_token="nope-PAT-91")
        with pytest.raises(AuthError, match="personal_access_token") as caught:
            connector.connect()
    assert "nope-PAT-91" not in str(caught.value)


def test_wrong_ca_over_https_is_unreachable_and_fails_fast(tmp_path: Path) -> None:
    sandbox = Sandbox(issues=10, accounts=5, seed=1, anchor=ANCHOR)
    ends = sandbox.serve(tmp_path / "right")
    wrong_ca = make_tls(tmp_path / "wrong").ca_path
    try:
        meter = jira_meter()
        connector = connector_for(sandbox, ends.jira_url, wrong_ca, meter=meter)
        with pytest.raises(UnreachableError) as caught:
            connector.connect()
        message = str(caught.value)
        assert str(wrong_ca) in message and "ca_bundle" in message
        assert ends.jira_url in message
        assert meter.total == 1  # no back-off on a certificate that cannot verify

        ok = connector_for(sandbox, ends.jira_url, ends.ca_bundle)
        assert ok.connect().deployment == "cloud"
    finally:
        sandbox.stop()


def test_unreachable_host_names_the_url() -> None:
    settings = JiraSettings(
        url="https://127.0.0.1:9", email="a@b.c", api_token="t", projects=("X",),
        timeout_seconds=2,
    )  # fmt: skip
    with pytest.raises(UnreachableError, match=r"https://127\.0\.0\.1:9"):
        open_jira(settings).connect()


# -- fields --------------------------------------------------------------------------------


def test_fields_resolve_by_name_id_and_clause_with_one_call(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    connector = connector_for(sandbox, url)
    assert connector.resolve_field("Salesforce Account") == JIRA_ACCOUNT_FIELD_ID
    assert connector.resolve_field("salesforce account") == JIRA_ACCOUNT_FIELD_ID
    assert connector.resolve_field(JIRA_ACCOUNT_FIELD_ID) == JIRA_ACCOUNT_FIELD_ID
    assert connector.resolve_field("cf[10100]") == JIRA_ACCOUNT_FIELD_ID
    assert connector.resolve_field("duedate") == "duedate"
    assert connector.resolve_fields(["Story Points", "Due date"]) == {
        "Story Points": "customfield_10016",
        "Due date": "duedate",
    }
    assert sandbox.jira_app.stats.snapshot()["by_endpoint"] == {"GET /rest/api/2/field": 1}


def test_missing_field_lists_close_candidates(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    connector = connector_for(sandbox, url)
    with pytest.raises(ConfigError) as caught:
        connector.resolve_field("Salesforce Acount", setting="[link] jira_field")
    message = str(caught.value)
    assert '"Salesforce Account" (customfield_10100, text)' in message
    assert "[link] jira_field" in message
    with pytest.raises(ConfigError, match="no field with id customfield_99999"):
        connector.resolve_field("customfield_99999")


def test_ambiguous_field_names_both_ids(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    connector = connector_for(sandbox, url)
    with pytest.raises(ConfigError) as caught:
        connector.resolve_field(JIRA_DUPLICATE_FIELD_NAME)
    message = str(caught.value)
    assert all(field_id in message for field_id in JIRA_DUPLICATE_FIELD_IDS)
    assert "ambiguous" in message and "field id" in message
    assert connector.resolve_field(JIRA_DUPLICATE_FIELD_IDS[1]) == JIRA_DUPLICATE_FIELD_IDS[1]


def test_catalog_without_close_names() -> None:
    catalog = FieldCatalog([{"id": "summary", "name": "Summary"}])
    with pytest.raises(ConfigError, match="matched exactly"):
        catalog.resolve("Zzyzx")


def test_pull_refuses_unknown_field_ids(box: tuple[Sandbox, str]) -> None:
    sandbox, url = box
    with pytest.raises(ConfigError, match="Salesforce Account"):
        connector_for(sandbox, url).pull_issues(["Salesforce Account"])
