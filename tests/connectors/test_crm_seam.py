"""The CRM seam (connectors/crm.py): the engine's CRM stages speak in kinds and plain
values, and the Salesforce connector is one implementation of it.

A second CRM is added as another implementation of :class:`connectors.crm.CrmConnector`;
that only works while the stages that pull, push, upload and check do not name
Salesforce's objects, fields or query language themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from connectors.crm import CrmConnector, Discoverable
from connectors.salesforce import SalesforceConnector, SalesforceSettings

ROOT = Path(__file__).resolve().parents[2]

#: Salesforce's names that the engine once used itself (objects, system fields, the
#: file object's fields, the limits entry).
SALESFORCE_NAMES = {
    "Account",
    "Case",
    "SystemModstamp",
    "AccountId",
    "IsClosed",
    "IsEscalated",
    "IsDeleted",
    "ContentVersion",
    "FirstPublishLocationId",
    "PathOnClient",
    "VersionData",
    "DailyApiRequests",
    "Owner.Name",
    "OwnerId",
}
#: The engine's CRM stages, and whether each may import the Salesforce package (the
#: factory that builds the configured connector, and check's offline key test, do).
STAGES = {
    "sync/cycle/pull.py": False,
    "sync/cycle/push.py": False,
    "sync/cycle/record.py": False,
    "sync/report/upload.py": False,
    "sync/discover/__init__.py": False,
    "sync/discover/calls.py": False,
    "sync/discover/jira_fields.py": False,
    "sync/discover/result.py": False,
    "sync/remote.py": True,
    "sync/check.py": True,
}


def _salesforce_in(path: Path, imports_allowed: bool) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in SALESFORCE_NAMES or "SELECT " in node.value:
                found.append(f"{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.ImportFrom) and node.module and not imports_allowed:
            if node.module.startswith(("connectors.salesforce", "connectors.soql")):
                found.append(f"{node.lineno}: from {node.module}")
            if node.module == "connectors" and any(a.name == "soql" for a in node.names):
                found.append(f"{node.lineno}: from connectors import soql")
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_engines_crm_stages_name_no_salesforce_object_or_field(stage: str) -> None:
    assert _salesforce_in(ROOT / stage, STAGES[stage]) == []


def test_salesforce_implements_the_seam() -> None:
    settings = SalesforceSettings(
        auth="session", instance_url="https://example.my.salesforce.com", access_token="t"
    )
    crm = SalesforceConnector(settings)  # builds, no call
    assert isinstance(crm, CrmConnector)
    assert crm.side == "salesforce" and crm.meter.total == 0


def test_salesforce_offers_discovery_and_recognises_account_ids_in_jira_fields() -> None:
    settings = SalesforceSettings(
        auth="session", instance_url="https://example.my.salesforce.com", access_token="t"
    )
    crm = SalesforceConnector(settings)
    assert isinstance(crm, Discoverable)
    terms = crm.discovery().terms  # no call
    assert (terms.name, terms.customer, terms.id_noun) == ("Salesforce", "Account", "Account Id")
    # 15 or 18 characters with the Account key prefix, in the 18-character form.
    assert terms.customer_id(" 001Dn00000AbCdE ") == "001Dn00000AbCdEIAV"
    assert terms.customer_id("001Dn00000AbCdEIAV") == "001Dn00000AbCdEIAV"
    assert terms.customer_id("006Dn00000AbCdEIAV") is None  # an Opportunity's
    assert terms.customer_id("Acme") is None
    assert crm.meter.total == 0
