"""The CRM seam holds: outside ``connectors/salesforce/`` (and the sandbox), nothing in the
mapping layer or the sync knows Salesforce's words: its name, SOQL, its object and field
names, its 15- and 18-character ids, the ``__c`` of its custom fields. The config, the
commands that write configs and demos, and the dispatch to the configured connector may:
each such file is listed below with the reason, and a listed file that no longer needs its
entry fails too, so the list only shrinks.

HubSpot, the second CRM, is added on this seam without touching ``mappings/``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("mappings", "sync")

#: Salesforce's words: its name and query language, the old id module, the id forms, its
#: objects and standard fields as code names them, and custom fields' suffix.
WORDS = re.compile(
    r"(?i:salesforce|soql|sfid|1[58]-char)"
    r"|\bAccounts?\b"
    r"|\b(?:AccountId|OwnerId|SystemModstamp|IsDeleted|IsClosed|IsEscalated)\b"
    r"|__c\b"
)

#: Files that may use the words, and why (a directory covers every file under it).
ALLOWED: dict[str, str] = {
    "mappings/rules.py": "the default [push.crm] field names of config.example.toml",
    "sync/config.py": "the [crm.salesforce] section and its settings",
    "sync/remote.py": "builds the configured CRM's connector and what it needs",
    "sync/check.py": "checks the [crm.salesforce] key file and CA bundle",
    "sync/init_config.py": "writes a config with the [crm.salesforce] section",
    "sync/cli/init.py": "the init command's [crm.salesforce] prompts",
    "sync/demo.py": "the demo runs against the Salesforce sandbox",
    "sync/cli/demo.py": "the demo command's --crm salesforce|hubspot choice",
    "sync/cli/sandbox.py": "serves the Salesforce sandbox",
    "sync/cli/logs.py": "names the simple-salesforce library's loggers",
}


def _allowed(relative: str) -> bool:
    return any(relative == key or relative.startswith(key + "/") for key in ALLOWED)


def _found() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                words = sorted({m.group(0) for m in WORDS.finditer(line)})
                if words:
                    found.setdefault(relative, []).append(f"{number}: {', '.join(words)}")
    return found


def test_no_salesforce_words_outside_the_allowed_places() -> None:
    stray = {path: lines for path, lines in _found().items() if not _allowed(path)}
    assert stray == {}, (
        "Salesforce's words outside connectors/salesforce/: say it in CRM-neutral terms, "
        "take it from the connector (crm.side, crm_form) or move the logic behind the seam"
    )


def test_every_allowed_place_still_needs_its_entry() -> None:
    found = _found()
    unused = [
        key
        for key in ALLOWED
        if not any(path == key or path.startswith(key + "/") for path in found)
    ]
    assert unused == [], "drop these from ALLOWED: they no longer use Salesforce's words"


def test_the_pattern_catches_what_it_is_for() -> None:
    caught = [
        "from connectors.salesforce.ids import canonical_id",
        'record.get("OwnerId")',
        '"""A CRM account: the 18-character Account Id."""',
        'field = "CSAT__c"',
        "SELECT Id FROM Case -- SOQL",
    ]
    assert all(WORDS.search(line) for line in caught)
    fine = ['record.get("owner_id")', "account_id = customer.id", "the account field"]
    assert not any(WORDS.search(line) for line in fine)
