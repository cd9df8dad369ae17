"""A short tour of the sandbox with the real clients (what ``make demo`` runs until the
full sync demo exists): start both emulators over HTTPS, read them with ``jira`` and
``simple-salesforce``, print what came back and how many calls it took, and stop.
Every figure printed is read from a response or from the sandbox's call counters.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import requests
from jira import JIRA
from simple_salesforce import Salesforce

from connectors.sandbox.schema import JIRA_ACCOUNT_FIELD_NAME
from connectors.sandbox.stack import Sandbox
from connectors.tls import pin_ca_bundle


def run(issues: int = 600, accounts: int = 120, seed: int = 1) -> int:
    """Run the tour; returns the process exit code."""
    box = Sandbox(issues=issues, accounts=accounts, seed=seed)
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-tour-") as tls_dir:
        ends = box.serve(Path(tls_dir))
        ca = str(ends.ca_bundle)
        try:
            print(f"Sandbox Jira at {ends.jira_url}, Salesforce at {ends.salesforce_url}")
            print(f"(a CA made for this run: {ca})\n")
            _jira_part(box, ends.jira_url, ca)
            _salesforce_part(box, ends.salesforce_url, ca)
            jira_stats = box.jira_app.stats.snapshot()
            sf_stats = box.salesforce_app.stats.snapshot()
            print("\nCalls counted by the sandbox:")
            for side, stats in (("Jira", jira_stats), ("Salesforce", sf_stats)):
                print(
                    f"  {side}: {stats['total']} ({stats['reads']} reads, {stats['writes']} writes)"
                )
                for endpoint, count in stats["by_endpoint"].items():
                    print(f"    {count:>4}  {endpoint}")
        finally:
            box.stop()
    print("\nBoth servers stopped. The full sync demo (`jira-crm-sync demo`) is not built yet;")
    print("run `jira-crm-sync sandbox --write-config sandbox.toml` to keep a sandbox running.")
    return 0


def _jira_part(box: Sandbox, url: str, ca: str) -> None:
    creds = box.credentials
    jira = JIRA(
        server=url,
        basic_auth=(creds.jira_email, creds.jira_api_token),
        options={"verify": ca},
        get_server_info=False,
    )
    pin_ca_bundle(jira._session, ca)
    info = jira.server_info()
    # What JIRA() does with serverInfo when it is allowed to call it in its constructor;
    # we call it afterwards so that the CA pinned above applies to that first call too.
    jira.deploymentType = info.get("deploymentType")
    me = jira.myself()
    print(
        f"Jira (jira {_version('jira')}): deploymentType {info['deploymentType']}, "
        f"user {me['displayName']} in time zone {me['timeZone']}"
    )
    field_ids = [f["id"] for f in jira.fields() if f["name"] == JIRA_ACCOUNT_FIELD_NAME]
    print(f"  field {JIRA_ACCOUNT_FIELD_NAME!r} resolves to {', '.join(field_ids)}")
    project = box.world.projects[0].key
    found = jira.search_issues(
        f'project = "{project}" ORDER BY key',
        maxResults=False,
        fields=["summary", "status", *field_ids],
    )
    statuses = Counter(issue.fields.status.name for issue in found)
    linked = sum(1 for issue in found if getattr(issue.fields, field_ids[0], None))
    print(
        f"  project {project}: {len(found)} issues by enhanced search "
        f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}); "
        f"{linked} carry an account id"
    )


def _salesforce_part(box: Sandbox, url: str, ca: str) -> None:
    session = pin_ca_bundle(requests.Session(), ca)
    sf = Salesforce(
        instance_url=url, session_id=box.credentials.salesforce_access_token, session=session
    )
    result = sf.query_all("SELECT Id, Name, Segment__c, CSAT__c FROM Account")
    segments = Counter(record["Segment__c"] for record in result["records"])
    print(
        f"\nSalesforce (simple-salesforce {_version('simple-salesforce')}): "
        f"{result['totalSize']} accounts by segment: "
        + ", ".join(f"{name} {n}" for name, n in sorted(segments.items()))
    )
    escalated = sf.query("SELECT COUNT() FROM Case WHERE IsEscalated = true AND IsClosed = false")
    usage = sf.api_usage.get("api-usage")
    used = f"{usage.used} of {usage.total}" if usage else "not reported"
    print(f"  open escalated cases: {escalated['totalSize']}; daily API calls used: {used}")


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    sys.exit(run())
