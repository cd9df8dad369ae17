"""``[crm] kind = "hubspot"``: the documented [crm.hubspot] section loads, its secrets come
from ${ENV} or *_file and never show, its mistakes are named with the fix, and it builds
the HubSpot connector (no call) and HubSpot's record form."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.hubspot import HubSpotConnector
from sync.check import run_checks
from sync.config import ConfigFileError, load_config
from sync.remote import build_crm, crm_form, crm_needs

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
TOKEN = "pat-na1-secret-789"
ENV = {"JIRA_API_TOKEN": "jira-secret-123", "HUBSPOT_ACCESS_TOKEN": TOKEN}


def hubspot_example() -> str:
    """config.example.toml switched to HubSpot as its comment says: kind set, the
    [crm.salesforce] sections removed, the [crm.hubspot] ones uncommented."""
    text = EXAMPLE.read_text(encoding="utf-8").replace('kind = "salesforce"', 'kind = "hubspot"')
    start = text.index("[crm.salesforce]\n")
    hubspot = text.index("# HubSpot instead of Salesforce")
    block_start = text.index("# [crm.hubspot]\n")
    block_end = text.index("\n[link]\n")
    block = "\n".join(
        "" if line == "#" else line.removeprefix("# ")
        for line in text[block_start:block_end].splitlines()
    )
    return text[:start] + text[hubspot:block_start] + block + text[block_end:]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _problems(tmp_path: Path, text: str, env: dict[str, str] = ENV) -> str:
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=env)
    joined = "\n".join(caught.value.problems)
    assert TOKEN not in joined and TOKEN not in str(caught.value)
    return joined


def test_the_documented_hubspot_section_loads_and_builds_the_connector(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, hubspot_example()), environ=ENV)
    assert (config.crm.kind, config.crm.side, config.crm.name) == ("hubspot", "hubspot", "HubSpot")
    assert config.crm.salesforce is None and config.crm.instance_url == ""
    assert TOKEN not in repr(config)
    settings = config.hubspot_settings()
    assert settings.access_token == TOKEN and settings.base_url == "https://api.hubapi.com"
    assert TOKEN not in repr(settings)
    # Reports name company and project by what [push.crm.fields] maps account/project_key to.
    fields = config.push.crm.fields
    assert settings.report_company_field == fields["account"]
    assert settings.report_object == config.push.crm.object
    assert settings.report_project_field == fields["project_key"]
    assert settings.survey_types == ("NPS",) and settings.escalation == "priority"
    crm = build_crm(config)
    assert isinstance(crm, HubSpotConnector) and crm.side == "hubspot"
    assert crm.meter.side == "hubspot" and crm.meter.total == 0
    needs = crm_needs(config)
    assert needs.customer.segment.name == "customer_group"
    assert needs.customer.segment.setting == "[crm.hubspot.company] segment_field"
    form = crm_form(config)
    assert form.customer_id(" 4410001 ") == "4410001"
    assert form.customer_id("0015000000AbCdEAAA") is None


def test_secrets_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "hubspot-token"
    secret.write_text(TOKEN + "\n", encoding="utf-8")
    text = hubspot_example().replace(
        'access_token = "${HUBSPOT_ACCESS_TOKEN}"', f'access_token_file = "{secret}"'
    )
    config = load_config(_write(tmp_path, text), environ={"JIRA_API_TOKEN": "j"})
    assert config.hubspot_settings().access_token == TOKEN


def test_mistakes_are_named_with_the_fix(tmp_path: Path) -> None:
    text = hubspot_example()
    plain = text.replace(
        'base_url = "https://api.hubapi.com"', 'base_url = "http://api.hubapi.com"'
    )
    assert "crm.hubspot.base_url: starts with http://" in _problems(tmp_path, plain)
    assert "required for auth = 'private_app'" in _problems(
        tmp_path, text.replace('access_token = "${HUBSPOT_ACCESS_TOKEN}"', "")
    )
    assert "required for auth = 'oauth'" in _problems(
        tmp_path, text.replace('auth = "private_app"', 'auth = "oauth"')
    )
    typo = text.replace("survey_types =", "survey_type =")
    assert "did you mean survey_types?" in _problems(tmp_path, typo)
    no_section = text[: text.index("[crm.hubspot]\n")] + text[text.index("[link]\n") :]
    assert "needs a [crm.hubspot] section" in _problems(tmp_path, no_section)
    both = text + '\n[crm.salesforce]\nauth = "session"\n'
    assert "reads no [crm.salesforce]" in _problems(tmp_path, both)
    unmapped = text.replace('account = "Account__c"\n', "")
    assert "[push.crm.fields] account is required" in _problems(tmp_path, unmapped)


def test_offline_check_accepts_a_hubspot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    text = hubspot_example().replace(
        'url = "sqlite:///jira-crm-sync.db"', f'url = "sqlite:///{tmp_path / "state.db"}"'
    )
    report = run_checks(_write(tmp_path, text), online=False)
    failed = [c for c in report.checks if c.status == "fail"]
    assert failed == [], failed
    assert any(c.name == "config" and c.status == "ok" for c in report.checks)
