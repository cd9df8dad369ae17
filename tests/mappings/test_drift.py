"""Drift per field, what a raw issue holds of ours, and duplicates (mappings.drift)."""

from __future__ import annotations

from mappings.drift import (
    Drift,
    crm_drift,
    duplicate_flag_comments,
    duplicate_reports,
    jira_drift,
    redundant_flag_comments,
    remote_jira,
)
from mappings.text import flag_marker
from mappings.writes import CrmWrite, JiraComment, JiraLedger, JiraWrite, RemoteJira
from tests.mappings.factories import IDS

OBJ, EXT = "Jira_Project_Status__c", "Jira_Sync_Key__c"
ACCOUNT_18 = "001Dn0000000001IAA"
ACCOUNT_15 = "001Dn0000000001"


def _write(key: str, **fields: object) -> CrmWrite:
    return CrmWrite(OBJ, EXT, key, tuple(sorted(fields.items())), "digest")


def test_crm_drift_names_each_differing_field_and_a_missing_record() -> None:
    writes = [
        _write("APOLLO:1", Issues_Total__c=12, Health__c="Green", Last_Synced__c="now"),
        _write("ORION:2", Issues_Total__c=3),
    ]
    remote = {
        "APOLLO:1": {"Issues_Total__c": 12.0, "Health__c": "Red", "Last_Synced__c": "before"},
    }
    found = crm_drift(writes, remote, frozenset({"Last_Synced__c"}))
    assert found == (
        Drift("crm", "APOLLO:1", "Health__c", "Red", "Green"),  # 12 and 12.0 agree
        Drift("crm", "ORION:2", "record", "missing", "present"),
    )


def _jira_write(key: str, **kwargs: object) -> JiraWrite:
    values: dict[str, object] = {
        "add_labels": (),
        "remove_labels": (),
        "set_field": None,
        "comments": (),
        "ledger": JiraLedger(key),
    }
    values.update(kwargs)
    return JiraWrite(key, **values)


def test_jira_drift_shows_labels_field_and_flag_comments_before_and_after() -> None:
    comment = JiraComment(
        flag_marker("001A", "at_risk"), "at risk " + flag_marker("001A", "at_risk")
    )
    writes = [
        _jira_write("A-1", add_labels=("customer-at-risk",)),
        _jira_write("A-2", remove_labels=("customer-at-risk",), set_field=("cf_1", None)),
        _jira_write("A-3", comments=(comment,)),
    ]
    remote = {
        "A-1": RemoteJira("A-1", frozenset({"x"})),
        "A-2": RemoteJira("A-2", frozenset({"customer-at-risk", "x"}), "watch"),
        "A-3": RemoteJira("A-3", flags=(("001A", "watch"),)),
    }
    assert jira_drift(writes, remote) == (
        Drift("jira", "A-1", "labels", ["x"], ["customer-at-risk", "x"]),
        Drift("jira", "A-2", "labels", ["customer-at-risk", "x"], ["x"]),
        Drift("jira", "A-2", "cf_1", "watch", None),
        Drift("jira", "A-3", "flag comment 001A", "watch", "at_risk"),
    )


def test_remote_jira_reads_labels_the_flag_field_and_comment_levels() -> None:
    issue = {
        "key": "A-1",
        "fields": {"labels": ["b", "a"], "customfield_9": {"value": "at_risk"}},
    }
    bodies = ["hello", "x " + flag_marker("001A", "watch"), flag_marker("001A", "at_risk")]
    seen = remote_jira(issue, "customfield_9", bodies)
    assert seen == RemoteJira("A-1", frozenset({"a", "b"}), "at_risk", (("001A", "at_risk"),))
    unread = remote_jira(issue, None)
    assert (unread.flags, unread.field_known, unread.field_value) == (None, False, None)


def test_duplicate_reports_by_external_id_and_by_pair() -> None:
    records = [
        ("a1", {EXT: "APOLLO:" + ACCOUNT_18, "Account__c": ACCOUNT_18, "Key__c": "APOLLO"}),
        ("a2", {EXT: "APOLLO:manual", "Account__c": ACCOUNT_15, "Key__c": "APOLLO"}),
        ("o1", {EXT: "ORION:x", "Account__c": None, "Key__c": "ORION"}),
        ("o2", {EXT: "ORION:x", "Account__c": None, "Key__c": "ORION"}),
        ("z1", {EXT: "ZED:y", "Account__c": ACCOUNT_18, "Key__c": "ZED"}),
    ]
    found = {
        (d.kind, d.key, d.ids) for d in duplicate_reports(records, EXT, "Account__c", "Key__c", IDS)
    }
    assert found == {
        ("report_external_id", "ORION:x", ("o1", "o2")),
        ("report_pair", "APOLLO:" + ACCOUNT_18, ("a1", "a2")),  # 15- and 18-char ids agree
    }


def test_a_flag_comment_repeated_without_a_change_is_a_duplicate() -> None:
    risk, ok = flag_marker("001A", "at_risk"), flag_marker("001A", "ok")
    other = flag_marker("001B", "at_risk")

    def numbered(*bodies: str) -> list[tuple[str, str]]:
        return [(f"1{n}", body) for n, body in enumerate(bodies)]

    assert duplicate_flag_comments("A-1", numbered(risk, ok, risk, other)) == ()
    (found,) = duplicate_flag_comments("A-1", numbered(risk, other, "note", risk))
    assert (found.kind, found.key, found.count, found.ids, found.detail) == (
        "flag_comment",
        "A-1",
        2,
        ("13",),  # the repeat, not the comment that announced the level first
        "customer 001A at_risk",
    )


def test_only_comments_that_repeat_every_level_they_name_are_redundant() -> None:
    a_risk, b_risk = flag_marker("001A", "at_risk"), flag_marker("001B", "at_risk")
    b_ok = flag_marker("001B", "ok")
    comments = [
        ("1", f"{a_risk} {b_risk}"),
        ("2", a_risk),  # repeats A: nothing new
        ("3", f"\\{a_risk[:-1]}\\] {b_ok}"),  # repeats A (escaped) but announces B ok
        ("4", "a person's note"),
        ("5", f"{a_risk} {b_ok}"),  # repeats both
    ]
    assert redundant_flag_comments(comments) == ("2", "5")
    assert [d.ids for d in duplicate_flag_comments("A-1", comments)] == [("2", "3", "5"), ("5",)]
