"""The HubSpot sandbox on its own: fresh secrets, its ready keys, and a config section the
connector runs with, over HTTPS and in-process."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from connectors.crm import (
    CASE,
    CUSTOMER,
    SURVEY,
    Configured,
    CustomerNeed,
    Needs,
    Read,
    ReportNeed,
    SurveyNeed,
)
from connectors.exceptions import AuthError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.sandbox.hubspot.models import DEFAULT_PRIVATE_APP_TOKEN
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.world import generate_world


def needs_from(config: dict[str, Any]) -> Needs:
    company, survey, push = (
        config["crm"]["hubspot"]["company"],
        config["satisfaction"]["survey"],
        config["push"]["crm"],
    )

    def c(name: str) -> Configured:
        return Configured(name, "[sandbox config]")

    return Needs(
        CustomerNeed(
            c(company["segment_field"]),
            c(company["satisfaction_field"]),
            c(config["link"]["crm_field"]),
        ),
        ReportNeed(
            c(push["object"]),
            c(push["external_id_field"]),
            tuple(c(f) for f in push["fields"].values()),
        ),
        SurveyNeed(
            c(survey["object"]),
            c(survey["account_field"]),
            c(survey["score_field"]),
            c(survey["date_field"]),
        ),
    )


def settings_from(config: dict[str, Any], **extra: Any) -> HubSpotSettings:
    section = {k: v for k, v in config["crm"]["hubspot"].items() if not isinstance(v, dict)}
    section["survey_types"] = tuple(section["survey_types"])
    section["ca_bundle"] = section["ca_bundle"] or None
    section["report_company_field"] = config["push"]["crm"]["fields"]["account"]
    section["report_project_field"] = config["push"]["crm"]["fields"]["project_key"]
    section.update(extra)
    return HubSpotSettings(**section)


@pytest.mark.parametrize("mount", ["https", "in-process"])
def test_the_written_config_runs_the_connector(tls: Tls, tmp_path: Path, mount: str) -> None:
    sandbox = HubSpotSandbox(generate_world(issues=0, accounts=25, seed=3))
    transport = None
    if mount == "https":
        sandbox.serve(tmp_path, tls=tls)
    else:
        transport = sandbox.in_process()
    try:
        config = tomllib.loads(sandbox.config_text())
        assert config["crm"]["kind"] == "hubspot"
        connector = HubSpotConnector(settings_from(config), transport=transport)
        needs = needs_from(config)
        assert all(connector.check_object(o) == [] for o in connector.objects(needs))
        pages = list(connector.changes(needs, [Read(CUSTOMER), Read(CASE), Read(SURVEY)]))
        assert {r.id for p in pages if p.kind == CUSTOMER for r in p.live} == set(
            sandbox.backend.records["0-2"]
        )
        company = next(iter(sandbox.backend.records["0-2"]))
        fields = config["push"]["crm"]["fields"]
        record = {
            "jira_sync_key": f"{company}:ABC",
            fields["account"]: company,
            fields["project_key"]: "ABC",
            fields["health"]: "Amber",
        }
        assert connector.upsert(config["push"]["crm"]["object"], "jira_sync_key", [record])[
            0
        ].success
        assert connector.instance_url == "https://app.hubspot.com/contacts/4400100/company"
    finally:
        sandbox.stop()


def test_each_sandbox_has_its_own_secrets(tls: Tls, tmp_path: Path) -> None:
    sandbox = HubSpotSandbox(generate_world(issues=0, accounts=3, seed=3))
    with pytest.raises(RuntimeError):
        sandbox.ready_document()
    sandbox.serve(tmp_path, tls=tls)
    try:
        ready = sandbox.ready_document()
        assert ready["hubspot_token"] != DEFAULT_PRIVATE_APP_TOKEN
        assert ready["ca_bundle"] == str(tls.ca_path)
        oauth = HubSpotSettings(
            auth="oauth",
            base_url=ready["hubspot_url"],
            client_id=ready["hubspot_client_id"],
            client_secret=ready["hubspot_client_secret"],
            refresh_token=ready["hubspot_refresh_token"],
            ca_bundle=ready["ca_bundle"],
        )
        HubSpotConnector(oauth).connect()
        stale = HubSpotSettings(
            base_url=ready["hubspot_url"],
            access_token=DEFAULT_PRIVATE_APP_TOKEN,
            ca_bundle=ready["ca_bundle"],
        )
        with pytest.raises(AuthError):
            HubSpotConnector(stale).connect()
    finally:
        sandbox.stop()
