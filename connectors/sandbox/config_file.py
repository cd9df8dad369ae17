"""The config file ``jira-crm-sync sandbox --write-config`` writes: same keys as
config.example.toml, pointing at a running sandbox, secrets as literal sandbox values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.schema import (
    JIRA_ACCOUNT_FIELD_NAME,
    JIRA_STORY_POINTS_FIELD_ID,
    SF_ACCOUNT_CSAT_FIELD,
    SF_ACCOUNT_PROJECT_KEY_FIELD,
    SF_ACCOUNT_SEGMENT_FIELD,
    SF_REPORT_EXTERNAL_ID,
    SF_REPORT_OBJECT,
    SF_SURVEY_OBJECT,
)
from connectors.sandbox.stack import Sandbox


def _s(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def sandbox_config_text(sandbox: Sandbox, state_url: str) -> str:
    """A complete config for the running sandbox."""
    if sandbox.endpoints is None:
        raise RuntimeError("the sandbox is not serving")
    ends = sandbox.endpoints
    c = sandbox.credentials
    ca = str(ends.ca_bundle) if ends.ca_bundle else ""
    projects = ", ".join(_s(p.key) for p in sandbox.world.projects)
    # The names this site shows (a localised site calls Story Points 故事点数).
    story_points = sandbox.jira.site_fields.name(JIRA_STORY_POINTS_FIELD_ID)
    if sandbox.jira_mode == "cloud":
        jira_auth = f"email = {_s(c.jira_email)}\napi_token = {_s(c.jira_api_token)}"
    else:
        jira_auth = f"personal_access_token = {_s(c.jira_pat)}"
    return f"""\
# Written by `jira-crm-sync sandbox --write-config` for the sandbox at
# {ends.jira_url} (Jira {sandbox.jira_mode}, locale {sandbox.locale}) and
# {ends.salesforce_url} (Salesforce), seed {sandbox.seed}.
# The secrets below are the sandbox's own throw-away values; a real config reads
# secrets from ${{ENV}} or *_file keys (see config.example.toml).

[state]
url = {_s(state_url)}

[jira]
url = {_s(ends.jira_url)}
deployment = {_s(sandbox.jira_mode)}
{jira_auth}
ca_bundle = {_s(ca)}
projects = [{projects}]
jql = ""
max_retries = 3
timeout_seconds = 30
overlap_seconds = 300

[crm]
kind = "salesforce"

[crm.salesforce]
auth = "client_credentials"
login_url = {_s(ends.salesforce_url)}
instance_url = {_s(ends.salesforce_url)}
consumer_key = {_s(c.salesforce_consumer_key)}
consumer_secret = {_s(c.salesforce_consumer_secret)}
api_version = "59.0"
ca_bundle = {_s(ca)}
bulk_threshold = 2000
parallel_writes = 4
daily_reserve_percent = 5

[crm.salesforce.account]
segment_field = {_s(SF_ACCOUNT_SEGMENT_FIELD)}
satisfaction_field = {_s(SF_ACCOUNT_CSAT_FIELD)}

[link]
order = ["jira_field", "crm_field", "static"]
jira_field = {_s(JIRA_ACCOUNT_FIELD_NAME)}
crm_field = {_s(SF_ACCOUNT_PROJECT_KEY_FIELD)}
inherit_from_epic = true

[link.static]

[progress]
measure = "count"
story_points_field = {_s(story_points)}
blocked_statuses = ["Blocked"]
blocked_labels = ["blocked"]
forecast_weeks = 6

[progress.health]
amber_overdue_ratio = 0.10
red_overdue_ratio = 0.25
amber_blocked_ratio = 0.10
red_blocked_ratio = 0.25
red_forecast_slip_days = 14

[satisfaction]
source = "account_field"
scale = 5
at_risk_below = 3.5
watch_below = 4.0
escalated_cases_at_risk = 1

[satisfaction.survey]
object = {_s(SF_SURVEY_OBJECT)}
account_field = "Account__c"
score_field = "Score__c"
date_field = "Responded_At__c"
window_days = 90
aggregate = "mean"

[push.crm]
object = {_s(SF_REPORT_OBJECT)}
external_id_field = {_s(SF_REPORT_EXTERNAL_ID)}

[push.crm.fields]
account = "Account__c"
project_key = "Jira_Project_Key__c"
issues_total = "Issues_Total__c"
issues_done = "Issues_Done__c"
issues_in_progress = "Issues_In_Progress__c"
issues_to_do = "Issues_To_Do__c"
issues_overdue = "Issues_Overdue__c"
percent_complete = "Percent_Complete__c"
health = "Health__c"
health_reasons = "Health_Reasons__c"
next_milestone = "Next_Milestone__c"
next_milestone_date = "Next_Milestone_Date__c"
forecast_date = "Forecast_Date__c"
summary = "Summary__c"
last_synced = "Last_Synced__c"

[push.jira]
issues = "open"
label = "customer-at-risk"
label_levels = ["at_risk"]
field = ""
comment_on_change = true
comment_on = "epics"
comment_on_first_sight = false
policy = "enforce"

[schedule]
every = "1m"

[serve]
listen = "127.0.0.1:9465"
lease_seconds = 300

[limits]
jira_calls_per_cycle = 5000
jira_calls_per_day = 100000
crm_calls_per_cycle = 5000
crm_calls_per_day = 100000

[report]
upload = false
period = "weekly"
title = "Progress report {{period}}"
"""


def write_sandbox_config(sandbox: Sandbox, path: Path, state_url: str | None = None) -> None:
    """Write the config file, readable by its owner only (it holds the sandbox's secrets)."""
    state = state_url or f"sqlite:///{path.resolve().with_suffix('.db')}"
    text = sandbox_config_text(sandbox, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """A TOML text as (table header, its lines) in order; the lines before the first
    header come under ``""``."""
    found: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("[") and line.rstrip().endswith("]"):
            found.append((line.strip(), []))
        else:
            found[-1][1].append(line)
    return found


def hubspot_config_text(sandbox: Sandbox, hubspot: HubSpotSandbox, state_url: str) -> str:
    """A complete config for the running Jira sandbox and HubSpot portal: the Jira
    sections of :func:`sandbox_config_text`, the CRM ones of
    :meth:`HubSpotSandbox.config_text`. Jira work items are linked to companies by the
    companies' project-keys property (``[link] order = ["crm_field", "static"]``): the
    sandbox's Jira account field holds the Salesforce org's ids, no HubSpot company id."""
    ours = dict(_sections(hubspot.config_text()))
    out: list[str] = []
    for header, lines in _sections(sandbox_config_text(sandbox, state_url)):
        if header in ("[crm.salesforce]", "[crm.salesforce.account]"):
            continue
        if header == "[crm]":
            for own in ("[crm]", "[crm.hubspot]", "[crm.hubspot.company]"):
                out += [own, *ours[own]]
            continue
        if header == "[link]":
            keep = [line for line in lines if not line.startswith(("order =", "crm_field ="))]
            out += [header, 'order = ["crm_field", "static"]', *ours["[link]"], *keep]
            continue
        if header in ("[satisfaction.survey]", "[push.crm]", "[push.crm.fields]"):
            extra = [line for line in lines if line.startswith(("window_days", "aggregate"))]
            out += [header, *[line for line in ours[header] if line], *extra, ""]
            continue
        if header:
            out.append(header)
        out += lines
    return (
        "\n".join(out).replace(
            f"{sandbox.endpoints.salesforce_url if sandbox.endpoints else ''} (Salesforce)",
            f"{hubspot.url} (HubSpot)",
        )
        + "\n"
    )


def write_hubspot_config(
    sandbox: Sandbox, hubspot: HubSpotSandbox, path: Path, state_url: str | None = None
) -> None:
    """Write :func:`hubspot_config_text`, readable by its owner only."""
    state = state_url or f"sqlite:///{path.resolve().with_suffix('.db')}"
    text = hubspot_config_text(sandbox, hubspot, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
