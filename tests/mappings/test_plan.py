"""Desired writes and the diff against the ledger and the remote: only what changed."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bench.merge import sf_id
from mappings.merge import MergeResult, merge, plan, remote_from_items
from mappings.plan import ledgers_after, remote_flags_from_comments
from mappings.rules import CrmPushRules, JiraPushRules, LinkRules, Rules
from mappings.text import flag_marker, parse_marker
from mappings.writes import JiraLedger, Plan, RemoteJira
from tests.mappings.factories import (
    ACME,
    AS_OF,
    GLOBEX,
    RULES,
    SimRemote,
    account,
    case,
    days_ago,
    issue,
)

LABEL = "customer-at-risk"


def world(
    acme_csat: float = 2.8, *, escalated: bool = False, rules: Rules = RULES
) -> tuple[list[dict[str, Any]], MergeResult]:
    raws = [
        issue("APOLLO-1", type_name="Epic", account=ACME, status="In Progress"),
        issue("APOLLO-2", parent="APOLLO-1", status="In Progress", labels=["backend"]),
        issue("APOLLO-3", parent="APOLLO-1", status="Done"),
        issue("APOLLO-4", account=GLOBEX),
    ]
    accounts = [account(ACME, "Acme Corp", csat=acme_csat), account(GLOBEX, "Globex", csat=4.6)]
    cases = [case(ACME, escalated=True)] if escalated else []
    result = merge(raws, accounts, cases, rules=rules, as_of=AS_OF, jira_url="https://jira.example")
    return raws, result


def test_crm_record_per_pair_with_mapped_fields() -> None:
    _, result = world()
    first = plan(result, RULES)
    assert [w.external_id for w in first.crm] == [f"APOLLO:{ACME}", f"APOLLO:{GLOBEX}"]
    acme = first.crm[0]
    fields = dict(acme.fields)
    assert acme.object == "Jira_Project_Status__c" and acme.external_id_field == "Jira_Sync_Key__c"
    assert fields["Account__c"] == ACME and fields["Jira_Project_Key__c"] == "APOLLO"
    assert fields["Issues_Total__c"] == 2  # the epic does not count
    assert (
        fields["Issues_Done__c"],
        fields["Issues_In_Progress__c"],
        fields["Issues_To_Do__c"],
    ) == (1, 1, 0)
    assert fields["Issues_Overdue__c"] == 0 and fields["Percent_Complete__c"] == 50.0
    assert fields["Health__c"] == "Green" and fields["Health_Reasons__c"] == "On track"
    assert fields["Next_Milestone__c"] is None and fields["Next_Milestone_Date__c"] is None
    assert fields["Forecast_Date__c"] is None
    # APOLLO-4 is Globex's: Acme's numbers cover part of the project, and the summary says so.
    assert str(fields["Summary__c"]).startswith(
        "2 of the 3 items of Apollo Rollout linked to Acme Corp: 50% complete, 1 done and "
        "1 in progress."
    )
    assert fields["Last_Synced__c"] == "2026-11-21T09:30:00Z"
    assert [name for name, _ in acme.fields] == sorted(name for name, _ in acme.fields)
    record = acme.record()
    assert record["attributes"] == {"type": "Jira_Project_Status__c"}
    assert record["Jira_Sync_Key__c"] == f"APOLLO:{ACME}"


def test_field_map_is_configurable() -> None:
    crm = CrmPushRules(
        object="Project__c",
        external_id_field="Key__c",
        fields=(
            ("health", "State__c"),
            ("issues_blocked", "Blocked__c"),
            ("customer_name", "Customer__c"),
        ),
    )
    _, result = world(rules=replace(RULES, crm_push=crm))
    write = plan(result, replace(RULES, crm_push=crm)).crm[0]
    assert write.object == "Project__c"
    assert dict(write.fields) == {"Blocked__c": 0, "Customer__c": "Acme Corp", "State__c": "Green"}


def test_crm_only_what_changed() -> None:
    _, result = world()
    first = plan(result, RULES)
    crm_ledger, jira_ledger = ledgers_after(first, {}, {})
    again = plan(result, RULES, crm_ledger=crm_ledger, jira_ledger=jira_ledger)
    assert again.is_empty and again.crm == () and again.jira == ()
    # A later run with nothing new: only the sync time differs, which is no reason to write.
    _, later = world()
    later = replace(later, reports=tuple(replace(r, as_of=days_ago(-0.01)) for r in later.reports))
    assert plan(later, RULES, crm_ledger=crm_ledger, jira_ledger=jira_ledger).crm == ()
    # A real change is written, with the new sync time.
    raws, _ = world()
    raws[1]["fields"]["status"] = {"name": "Done", "statusCategory": {"key": "done"}}
    raws[1]["fields"]["resolutiondate"] = "2026-11-20T10:00:00.000+0000"
    accounts = [account(ACME, "Acme Corp", csat=2.8), account(GLOBEX, "Globex", csat=4.6)]
    changed = merge(raws, accounts, rules=RULES, as_of=AS_OF)
    update = plan(changed, RULES, crm_ledger=crm_ledger, jira_ledger=jira_ledger)
    assert [w.external_id for w in update.crm] == [f"APOLLO:{ACME}"]


def test_crm_remote_drift_is_enforced_and_matching_remote_only_updates_the_ledger() -> None:
    raws, result = world()
    first = plan(result, RULES)
    sim = SimRemote.from_issues(raws)
    sim.apply(first)
    # A person edits the report record: reconcile sees the drift and writes it back.
    sim.crm[f"APOLLO:{ACME}"]["Health__c"] = "Red"
    sim.crm[f"APOLLO:{ACME}"]["Percent_Complete__c"] = "50"  # numbers as text still match
    drift = plan(
        result, RULES, crm_ledger=sim.crm_ledger, jira_ledger=sim.jira_ledger, crm_remote=sim.crm
    )
    assert [w.external_id for w in drift.crm] == [f"APOLLO:{ACME}"]
    (conflict,) = drift.conflicts
    assert (conflict.side, conflict.what, conflict.action) == ("crm", "Health__c", "enforced")
    # Lost ledger, remote already right (a crash after the write): record, do not write.
    lost = plan(
        result,
        RULES,
        crm_ledger={},
        jira_ledger=sim.jira_ledger,
        crm_remote={k: v for k, v in sim.crm.items() if k.endswith(GLOBEX)},
    )
    assert [key for key, _ in lost.crm_ledger] == [f"APOLLO:{GLOBEX}"]
    assert [w.external_id for w in lost.crm] == [f"APOLLO:{ACME}"]


def test_stale_records_are_reported_not_deleted() -> None:
    _, result = world()
    stale = plan(result, RULES, crm_ledger={f"ORION:{ACME}": "abc"}, crm_remote={f"ZED:{ACME}": {}})
    assert stale.stale_crm == (f"ORION:{ACME}", f"ZED:{ACME}")


def test_jira_label_on_open_linked_items_of_an_at_risk_customer() -> None:
    _, result = world(acme_csat=2.8)
    first = plan(result, RULES, jira_remote=remote_from_items(result.items))
    assert [(w.issue_key, w.add_labels) for w in first.jira] == [
        ("APOLLO-1", (LABEL,)),  # the open epic is linked work too
        ("APOLLO-2", (LABEL,)),
    ]
    # The first sight of a level (a first sync) posts no comment: the label says it.
    assert [w.comments for w in first.jira] == [(), ()]
    assert first.jira[0].set_field == ("customfield_10300", "at_risk")
    # The epic remembers the level (a later change is told from this first sight); its
    # child leaves that to the epic, where the comment about Acme would go.
    assert first.jira[0].ledger == JiraLedger("APOLLO-1", LABEL, "at_risk", ((ACME, "at_risk"),))
    assert first.jira[1].ledger == JiraLedger("APOLLO-2", LABEL, "at_risk", ())
    # Globex is ok: nothing to write on its item, only its level to remember.
    assert first.jira_ledger == (JiraLedger("APOLLO-4", flags=((GLOBEX, "ok"),)),)


def test_a_level_change_is_one_comment_on_the_epic_not_on_its_children() -> None:
    raws, watching = world(acme_csat=3.8)
    sim = SimRemote.from_issues(raws)
    assert [w.comments for w in cycle(sim, watching).jira] == [(), ()]
    _, at_risk = world(acme_csat=2.8)
    changed = cycle(sim, at_risk)
    assert [(w.issue_key, len(w.comments)) for w in changed.jira] == [
        ("APOLLO-1", 1),
        ("APOLLO-2", 0),  # the label and field, no comment: the epic has it
    ]
    comment = changed.jira[0].comments[0]
    assert comment.marker == flag_marker(ACME, "at_risk") == f"[jira-crm-sync:flag:{ACME}:at_risk]"
    assert comment.body == (
        "Customer Acme Corp is at risk: CSAT 2.8/5 below 3.5. (since 2026-11-21) "
        f"\\[jira-crm-sync:flag:{ACME}:at_risk\\]"
    )
    assert not changed.jira[0].check_markers  # a change the ledger knows of: no search
    assert cycle(sim, at_risk).is_empty
    assert sim.comments_posted == 1


def test_comment_on_all_comments_on_every_flagged_item() -> None:
    rules = replace(RULES, jira_push=JiraPushRules(comment_on="all"))
    raws, watching = world(acme_csat=3.8, rules=rules)
    sim = SimRemote.from_issues(raws)
    cycle(sim, watching, rules)
    _, at_risk = world(acme_csat=2.8, rules=rules)
    changed = cycle(sim, at_risk, rules)
    assert [(w.issue_key, len(w.comments)) for w in changed.jira] == [
        ("APOLLO-1", 1),
        ("APOLLO-2", 1),
    ]


def labels_only_cycle(sim: SimRemote, result: MergeResult, rules: Rules) -> Plan:
    """A cycle as `run` makes it: it knows the labels of the issues it pulled, not their
    comments or the flag field."""
    known = {key: RemoteJira(key, labels, field_known=False) for key, labels in sim.labels.items()}
    the_plan = plan(result, rules, jira_ledger=sim.jira_ledger, jira_remote=known)
    sim.apply(the_plan)
    return the_plan


def test_a_done_item_remembers_the_level_it_announced() -> None:
    """At risk (a comment), done (label off), reopened once the customer is OK, then at
    risk again: the item's comments must alternate, never say "at risk" twice in a row
    (reconcile would call the second a duplicate). Forgetting the level when the item was
    done made the reopen a silent first sight, and the next change a repeat."""
    rules = replace(RULES, jira_push=JiraPushRules(comment_on="all"))
    raws, watching = world(acme_csat=3.8, rules=rules)
    sim = SimRemote.from_issues(raws)
    labels_only_cycle(sim, watching, rules)

    def state(status: str, category: str, csat: float) -> MergeResult:
        raws[1]["fields"]["status"] = {"name": status, "statusCategory": {"key": category}}
        accounts = [account(ACME, csat=csat), account(GLOBEX, csat=4.6)]
        return merge(raws, accounts, rules=rules, as_of=AS_OF)

    labels_only_cycle(sim, state("In Progress", "indeterminate", 2.8), rules)
    labels_only_cycle(sim, state("Done", "done", 2.8), rules)
    labels_only_cycle(sim, state("In Progress", "indeterminate", 4.6), rules)
    labels_only_cycle(sim, state("In Progress", "indeterminate", 2.8), rules)
    levels = [level for body in sim.comments["APOLLO-2"] for _, level in parse_marker(body)]
    assert levels == ["at_risk", "ok", "at_risk"], levels


def test_first_sight_comments_only_when_configured_and_then_checks_the_site() -> None:
    rules = replace(RULES, jira_push=JiraPushRules(comment_on_first_sight=True))
    _, at_risk = world(acme_csat=2.8, rules=rules)
    first = plan(at_risk, rules, jira_remote=remote_from_items(at_risk.items))
    assert [(w.issue_key, len(w.comments), w.check_markers) for w in first.jira] == [
        ("APOLLO-1", 1, True),  # the ledger knows nothing: the push looks for our markers
        ("APOLLO-2", 0, False),
    ]
    # With the comments read (reconcile), what they show is known: no search, no repeat.
    sim = SimRemote.from_issues(world(rules=rules)[0])
    sim.apply(first)
    sim.jira_ledger = {}  # a new state store
    assert plan(at_risk, rules, jira_remote=sim.jira_remote()).jira == ()


def test_an_item_of_many_customers_gets_one_comment_naming_those_that_changed() -> None:
    many = [sf_id("001", n) for n in range(10, 25)]
    rules = replace(RULES, link=LinkRules(static=(("ORION", tuple(many)),)))
    raws = [
        issue("ORION-1", status="In Progress"),
        issue("ORION-2", type_name="Epic", status="In Progress"),
        issue("ORION-3", parent="ORION-2", status="To Do"),
    ]

    def at(csat: float, *, changed: int) -> MergeResult:
        accounts = [
            account(c, f"Customer [{n}|https://evil.example]", csat=csat if n < changed else 4.6)
            for n, c in enumerate(many)
        ]
        return merge(raws, accounts, rules=rules, as_of=AS_OF)

    sim = SimRemote.from_issues(raws)
    first = cycle(sim, at(4.6, changed=0), rules)
    assert first.jira == () and {e.issue_key for e in first.jira_ledger} == {"ORION-1", "ORION-2"}
    changed = cycle(sim, at(2.8, changed=12), rules)
    # A project-level rule links every item to 15 accounts; 12 went at risk: one comment on
    # each item with no epic above it (ORION-1, the epic ORION-2), none on ORION-3.
    commented = {w.issue_key: w.comments for w in changed.jira if w.comments}
    assert set(commented) == {"ORION-1", "ORION-2"}
    (comment,) = commented["ORION-1"]
    assert comment.markers == tuple(flag_marker(c, "at_risk") for c in many[:12])
    assert comment.body.startswith("Customer satisfaction changed for 12 customers of this work:")
    assert comment.body.count("\n* ") == 12 and "[0|" not in comment.body
    assert "Customer \\[0\\|https:\u200b//evil.example\\] is at risk" in comment.body
    assert [c for c, _ in remote_flags_from_comments([comment.body])] == sorted(many[:12])
    assert cycle(sim, at(2.8, changed=12), rules).is_empty


def test_watch_level_comments_and_sets_the_field_but_no_label() -> None:
    raws, fine = world(acme_csat=4.5)
    sim = SimRemote.from_issues(raws)
    cycle(sim, fine)
    _, result = world(acme_csat=3.8)
    changed = cycle(sim, result)
    assert all(w.add_labels == () for w in changed.jira)
    assert {w.set_field for w in changed.jira} == {("customfield_10300", "watch")}
    assert [len(w.comments) for w in changed.jira] == [1, 0]  # the epic, not its child


def test_escalated_case_and_label_levels() -> None:
    _, result = world(acme_csat=4.8, escalated=True)
    assert {f.customer_id: f.level for f in result.flags}[ACME] == "at_risk"
    watch_too = replace(RULES, jira_push=JiraPushRules(label_levels=("watch", "at_risk")))
    _, watching = world(acme_csat=3.8, rules=watch_too)
    assert all(w.add_labels == (LABEL,) for w in plan(watching, watch_too).jira)


def test_which_issues_carry_the_flag() -> None:
    def keys(issues: str) -> list[str]:
        rules = replace(RULES, jira_push=JiraPushRules(issues=issues))  # type: ignore[arg-type]
        _, result = world(rules=rules)
        return [w.issue_key for w in plan(result, rules).jira]

    assert keys("open") == ["APOLLO-1", "APOLLO-2"]
    assert keys("epics") == ["APOLLO-1"]
    assert keys("all") == ["APOLLO-1", "APOLLO-2", "APOLLO-3"]


def test_no_comment_and_no_field_when_not_configured() -> None:
    rules = replace(
        RULES,
        jira_push=JiraPushRules(comment_on_change=False),
        fields=replace(RULES.fields, flag_field=None),
    )
    _, result = world(rules=rules)
    first = plan(result, rules)
    assert [(w.add_labels, w.set_field, w.comments) for w in first.jira] == [
        ((LABEL,), None, ())
    ] * 2


def cycle(sim: SimRemote, result: MergeResult, rules: Rules = RULES) -> Plan:
    the_plan = plan(
        result,
        rules,
        crm_ledger=sim.crm_ledger,
        jira_ledger=sim.jira_ledger,
        crm_remote=sim.crm,
        jira_remote=sim.jira_remote(),
    )
    sim.apply(the_plan)
    return the_plan


def test_clearing_a_flag_removes_what_it_added_and_comments_once_each_way() -> None:
    raws, at_risk = world(acme_csat=2.8)
    sim = SimRemote.from_issues(raws)
    original = dict(sim.labels)
    cycle(sim, at_risk)
    assert sim.labels["APOLLO-2"] == {"backend", LABEL}
    assert cycle(sim, at_risk).is_empty  # applying twice changes nothing
    _, recovered = world(acme_csat=4.5)
    cleared = cycle(sim, recovered)
    assert [(w.issue_key, w.remove_labels, w.set_field) for w in cleared.jira] == [
        ("APOLLO-1", (LABEL,), ("customfield_10300", None)),
        ("APOLLO-2", (LABEL,), ("customfield_10300", None)),
    ]
    assert (
        cleared.jira[0]
        .comments[0]
        .body.startswith("Customer Acme Corp is no longer flagged: satisfaction is OK.")
    )
    assert sim.labels == original and all(v is None for v in sim.fields.values())
    assert cycle(sim, recovered).is_empty
    # The first sight was quiet; the change back is one comment, on the epic.
    assert sim.comments_posted == 1
    # Nothing owned any more: the epic and APOLLO-4 remember their customers are ok.
    assert sim.jira_ledger == {
        "APOLLO-1": JiraLedger("APOLLO-1", flags=((ACME, "ok"),)),
        "APOLLO-4": JiraLedger("APOLLO-4", flags=((GLOBEX, "ok"),)),
    }


def test_a_label_a_person_put_there_is_never_ours_to_remove() -> None:
    raws, at_risk = world(acme_csat=2.8)
    sim = SimRemote.from_issues(raws)
    sim.person_sets("APOLLO-2", ["backend", LABEL])
    first = cycle(sim, at_risk)
    assert [w.issue_key for w in first.jira if w.add_labels] == ["APOLLO-1"]
    _, recovered = world(acme_csat=4.5)
    cycle(sim, recovered)
    assert sim.labels["APOLLO-2"] == {"backend", LABEL}
    assert sim.labels["APOLLO-1"] == frozenset()


def test_a_person_removing_our_label_enforce_or_respect() -> None:
    raws, at_risk = world(acme_csat=2.8)
    for policy, expected in (("enforce", {"backend", LABEL}), ("respect", {"backend"})):
        rules = replace(RULES, jira_push=JiraPushRules(policy=policy))  # type: ignore[arg-type]
        sim = SimRemote.from_issues(raws)
        cycle(sim, at_risk, rules)
        sim.person_sets("APOLLO-2", ["backend"], level="watch")
        again = cycle(sim, at_risk, rules)
        assert sim.labels["APOLLO-2"] == expected
        action = "enforced" if policy == "enforce" else "respected"
        assert [(c.key, c.what, c.action) for c in again.conflicts] == [
            ("APOLLO-2", "field", action),
            ("APOLLO-2", "label", action),
        ]
        assert sim.fields["APOLLO-2"] == ("at_risk" if policy == "enforce" else "watch")
        cycle(sim, at_risk, rules)  # stable: nothing more is written either way
        assert cycle(sim, at_risk, rules).jira == ()


def test_a_crash_after_commenting_does_not_comment_twice() -> None:
    raws, watching = world(acme_csat=3.8)
    sim = SimRemote.from_issues(raws)
    cycle(sim, watching)
    _, at_risk = world(acme_csat=2.8)
    first = plan(at_risk, RULES, jira_ledger=sim.jira_ledger, jira_remote=sim.jira_remote())
    assert [len(w.comments) for w in first.jira] == [1, 0]
    sim.apply(first)
    sim.jira_ledger = {}  # the ledger commit was lost
    again = plan(at_risk, RULES, jira_remote=sim.jira_remote())
    assert again.jira == ()  # labels and field are there, the markers too
    assert [entry.issue_key for entry in again.jira_ledger] == ["APOLLO-1", "APOLLO-2", "APOLLO-4"]


def test_unlinked_or_finished_items_get_back_what_we_took() -> None:
    raws, at_risk = world(acme_csat=2.8)
    sim = SimRemote.from_issues(raws)
    cycle(sim, at_risk)
    raws[1]["fields"]["status"] = {"name": "Done", "statusCategory": {"key": "done"}}
    done = merge(
        raws, [account(ACME, csat=2.8), account(GLOBEX, csat=4.6)], rules=RULES, as_of=AS_OF
    )
    finished = cycle(sim, done)
    assert [(w.issue_key, w.remove_labels, w.comments) for w in finished.jira] == [
        ("APOLLO-2", (LABEL,), ())
    ]


def test_remote_missing_issue_is_left_alone() -> None:
    _, at_risk = world(acme_csat=2.8)
    only_one = {"APOLLO-1": RemoteJira("APOLLO-1")}
    assert [w.issue_key for w in plan(at_risk, RULES, jira_remote=only_one).jira] == ["APOLLO-1"]


def test_marker_parsing_takes_the_latest_per_customer() -> None:
    bodies = [
        f"x {flag_marker(ACME, 'at_risk')}",
        f"{flag_marker(GLOBEX, 'watch')} and {flag_marker(ACME, 'ok')}",
        "[jira-crm-sync:flag:broken",
        "[jira-crm-sync:flag:abc:panic]",
    ]
    assert remote_flags_from_comments(bodies) == ((ACME, "ok"), (GLOBEX, "watch"))


def test_plan_renders_stably() -> None:
    rules = replace(RULES, jira_push=JiraPushRules(comment_on_first_sight=True))
    _, result = world(rules=rules)
    first = plan(result, rules)
    assert first.to_json() == plan(result, rules).to_json()
    data = json.loads(first.to_json())
    assert set(data) == {"crm", "jira", "crm_ledger", "jira_ledger", "stale_crm", "conflicts"}
    text = first.render_text()
    assert f"crm upsert Jira_Project_Status__c APOLLO:{ACME}" in text
    assert f"jira APOLLO-1 +{LABEL} customfield_10300=at_risk comment [jira-crm-sync:flag:" in text
    assert Plan().render_text() == "" and Plan().is_empty


def test_ledger_entries_round_trip() -> None:
    entry = JiraLedger("APOLLO-2", LABEL, "at_risk", ((ACME, "at_risk"),))
    assert JiraLedger.from_dict(json.loads(json.dumps(entry.as_dict()))) == entry
    assert JiraLedger("X-1").is_empty
