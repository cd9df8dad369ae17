"""`init --discover --crm hubspot`, then `check --online`, then `run`, against the HTTPS
Jira sandbox and a HubSpot sandbox portal of the same world (the real CLI, in-process): no
hand edit between them, no secret in the file, a handful of calls and no write before the
run. `check --online` names the scopes the token lacks, with the fix, and suggests the
property discovery finds for a configured name that is missing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app
from sync.config import load_config
from tests.sync.e2e import ANCHOR, make_sandbox


def invoke(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:  # the CLI points the root logger at its own (captured) stderr
        root.handlers[:], root.level = handlers, level
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sites(tmp_path: Path, tls: Tls) -> Iterator[tuple[Sandbox, HubSpotSandbox]]:
    box = make_sandbox(80, 12, seed=2, anchor=ANCHOR)
    box.serve(tmp_path, tls=tls)
    hub = HubSpotSandbox(box.world)
    hub.serve(tmp_path, tls=tls)
    try:
        yield box, hub
    finally:
        hub.stop()
        box.stop()


def init(box: Sandbox, hub: HubSpotSandbox, path: Path) -> tuple[list[str], dict[str, str]]:
    ends = box.endpoints
    assert ends is not None and ends.ca_bundle is not None
    c = box.credentials
    env = {"JIRA_API_TOKEN": c.jira_api_token, "HUBSPOT_ACCESS_TOKEN": hub.private_app_token}
    args = [
        "init", "--discover", "--no-input", "--output", str(path), "--crm", "hubspot",
        "--jira-url", ends.jira_url, "--jira-ca-bundle", str(ends.ca_bundle),
        "--jira-auth", "cloud", "--jira-email", c.jira_email,
        "--hubspot-base-url", str(hub.url), "--hubspot-ca-bundle", str(hub.ca_bundle),
        "--state-url", f"sqlite:///{path.with_suffix('.db')}",
    ]  # fmt: skip
    return args, env


def test_discover_then_check_then_run_with_no_hand_edit(
    sites: tuple[Sandbox, HubSpotSandbox], tmp_path: Path
) -> None:
    box, hub = sites
    path = tmp_path / "jira-crm-sync.toml"
    args, env = init(box, hub, path)
    hub.app.stats.reset()

    code, out, err = invoke(*args, env=env)

    assert code == 0, out + err
    made = hub.app.stats.snapshot()
    assert made["writes"] == 0 and made["reads"] <= 8, made
    text = path.read_text(encoding="utf-8")
    for secret in env.values():
        assert secret not in text and secret not in out + err
    assert "and to HubSpot at " in out and "HubSpot calls)" in out
    config = load_config(path, environ=env)
    assert config.crm.kind == "hubspot"
    hs = config.crm.hubspot
    assert hs is not None and hs.base_url == hub.url
    assert (hs.company.segment_field, hs.company.satisfaction_field) == (
        "customer_group",
        "csat_score",
    )
    # The Jira account field holds the Salesforce org's ids, no company id: left out.
    assert config.link.order == ("crm_field", "static")
    assert config.link.crm_field == "jira_project_keys"
    assert (config.push.crm.object, config.push.crm.external_id_field) == (
        "jira_project_status",
        "jira_sync_key",
    )
    assert "# discovered: text property; " in text

    check = invoke("--config", str(path), "check", "--online", env=env)
    assert check[0] == 0, check[1] + check[2]
    assert "FAIL" not in check[1]
    assert "OK    hubspot scopes: the token holds every scope a cycle uses" in check[1]

    run = invoke("--config", str(path), "run", env=env)
    assert run[0] == 0, run[1] + run[2]
    reports = hub.backend.records[CUSTOM_TYPE_ID]
    assert reports and all(r.properties.get("health") for r in reports.values())


def test_check_online_names_lacking_scopes_and_missing_properties(
    sites: tuple[Sandbox, HubSpotSandbox], tmp_path: Path
) -> None:
    box, hub = sites
    path = tmp_path / "jira-crm-sync.toml"
    args, env = init(box, hub, path)
    assert invoke(*args, env=env)[0] == 0
    hub.backend.scopes -= {"crm.objects.custom.write", "crm.objects.owners.read"}

    code, out, _err = invoke("--config", str(path), "check", "--online", env=env)

    assert code == 3  # the portal's to fix, not the config's
    fails = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("FAIL")}
    assert set(fails) == {
        "FAIL  hubspot scope crm.objects.custom.write",
        "FAIL  hubspot scope crm.objects.owners.read",
    }
    assert (
        "needed to upsert the progress reports into jira_project_status; add scope "
        "crm.objects.custom.write to the private app (Settings > Integrations > Private apps"
    ) in fails["FAIL  hubspot scope crm.objects.custom.write"]

    hub.backend.scopes |= {"crm.objects.custom.write", "crm.objects.owners.read"}
    text = path.read_text(encoding="utf-8")
    for old, new in (
        ('segment_field = "customer_group"', 'segment_field = "tier"'),
        ('object = "jira_project_status"', 'object = "project_status"'),
    ):
        assert text.count(old) == 1
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")

    code, out, _err = invoke("--config", str(path), "check", "--online", env=env)

    assert code == 2
    fails = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("FAIL")}
    assert set(fails) == {
        "FAIL  hubspot field companies.tier",
        "FAIL  hubspot object project_status",
    }
    assert (
        'did you mean "customer_group" (dropdown property; 12 of 12 sampled companies'
        in (fails["FAIL  hubspot field companies.tier"])
    )
    # A misspelt custom object would send the reports into company properties unseen.
    wrong = fails["FAIL  hubspot object project_status"]
    assert (
        "HubSpot has no custom object 'project_status' (the portal's: jira_project_status); "
        "fix [push.crm] object"
    ) in wrong
    assert 'did you mean "jira_project_status" (custom object; holds all 15 report' in wrong
