"""Properties of the whole mapping step: a deterministic plan, idempotent cycles, and a
cleared flag that gives back exactly what it took."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.drift import duplicate_flag_comments
from mappings.merge import MergeResult, merge, plan
from mappings.rules import FieldIds, JiraPushRules, LinkRules, Rules
from mappings.writes import RemoteJira
from tests.mappings.factories import (
    ACME,
    AS_OF,
    GLOBEX,
    GONE,
    IDS,
    INITECH,
    NOBODY,
    RULES,
    SimRemote,
    account,
    case,
    issue,
)

LABEL = "customer-at-risk"
ACCOUNT_IDS = (ACME, GLOBEX, INITECH)
STATUSES = ("To Do", "In Progress", "Blocked", "Done")
LINK_VALUES = (None, None, ACME, ACME[:15], f" {GLOBEX} ", INITECH, NOBODY, GONE, "junk")
VERSION = {
    "id": "1",
    "name": "Next",
    "released": False,
    "archived": False,
    "releaseDate": "2026-12-01",
}


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """A small world: accounts with scores and cases, issues in two projects."""
    accounts = [
        account(
            account_id,
            f"Customer {n}",
            csat=draw(st.sampled_from((None, 1.5, 3.2, 3.8, 4.5))),
            segment=draw(st.sampled_from(("Enterprise", "SMB", None))),
            project_key=draw(st.sampled_from((None, None, "ORION"))),
        )
        for n, account_id in enumerate(ACCOUNT_IDS)
    ]
    cases = [
        case(draw(st.sampled_from(ACCOUNT_IDS)), escalated=draw(st.booleans()))
        for _ in range(draw(st.integers(0, 3)))
    ]
    issues = []
    for project in ("APOLLO", "ORION"):
        count = draw(st.integers(0, 6))
        for number in range(1, count + 1):
            kind = draw(st.sampled_from(("Epic", "Story", "Story", "Sub-task")))
            parent = (
                f"{project}-{draw(st.integers(1, number - 1))}"
                if number > 1 and kind != "Epic" and draw(st.booleans())
                else None
            )
            issues.append(
                issue(
                    f"{project}-{number}",
                    type_name=kind,
                    parent=parent,
                    parent_type="Story" if kind == "Sub-task" else "Epic",
                    account=draw(st.sampled_from(LINK_VALUES)),
                    status=draw(st.sampled_from(STATUSES)),
                    labels=draw(
                        st.lists(
                            st.sampled_from(("backend", "blocked", LABEL)), unique=True, max_size=2
                        )
                    ),
                    due=draw(st.sampled_from((None, "2026-11-01", "2026-12-24"))),
                    versions=[VERSION] if draw(st.booleans()) else [],
                )
            )
    return {"issues": issues, "accounts": accounts, "cases": cases}


@st.composite
def rule_sets(draw: st.DrawFn) -> Rules:
    """The [push.jira] and [link] variants that change what a plan holds."""
    jira = JiraPushRules(
        issues=draw(st.sampled_from(("open", "epics", "all"))),
        label_levels=draw(st.sampled_from((("at_risk",), ("watch", "at_risk")))),
        comment_on_change=draw(st.booleans()),
        comment_on=draw(st.sampled_from(("epics", "all"))),
        comment_on_first_sight=draw(st.booleans()),
        policy=draw(st.sampled_from(("enforce", "respect"))),
    )
    flag_field = draw(st.sampled_from((None, "customfield_10300")))
    link = LinkRules(static=(("APOLLO", (INITECH,)),)) if draw(st.booleans()) else LinkRules()
    return replace(
        RULES, jira_push=jira, link=link, fields=replace(RULES.fields, flag_field=flag_field)
    )


def run_merge(world: dict[str, Any], rules: Rules, **changes: Any) -> MergeResult:
    data = {**world, **changes}
    return merge(
        data["issues"],
        data["accounts"],
        data["cases"],
        rules=rules,
        as_of=AS_OF,
        deleted_account_ids=[GONE],
        customer_ids=IDS,
    )


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(worlds(), rule_sets(), st.randoms(use_true_random=False))
def test_the_plan_is_deterministic_whatever_the_input_order(
    world: dict[str, Any], rules: Rules, rng: Any
) -> None:
    shuffled = {key: rng.sample(value, len(value)) for key, value in world.items()}
    one = run_merge(world, rules)
    two = run_merge(shuffled, rules)
    assert one == two
    sim = SimRemote.from_issues(world["issues"])
    first = plan(one, rules, jira_remote=sim.jira_remote())
    second = plan(two, rules, jira_remote=SimRemote.from_issues(shuffled["issues"]).jira_remote())
    assert first == second
    assert first.to_json() == second.to_json()
    assert first.render_text() == second.render_text()


@SETTINGS
@given(worlds(), rule_sets(), worlds())
def test_applying_a_plan_and_planning_again_changes_nothing(
    world: dict[str, Any], rules: Rules, later: dict[str, Any]
) -> None:
    sim = SimRemote.from_issues(world["issues"])
    result = run_merge(world, rules)
    for _ in range(2):
        planned = plan(
            result,
            rules,
            crm_ledger=sim.crm_ledger,
            jira_ledger=sim.jira_ledger,
            crm_remote=sim.crm,
            jira_remote=sim.jira_remote(),
        )
        # One comment per issue per change, however many of its customers changed.
        assert all(len(write.comments) <= 1 for write in planned.jira)
        sim.apply(planned)
        # No comment repeats the level its customer's previous marker already showed.
        assert not any(
            duplicate_flag_comments(key, [(str(n), body) for n, body in enumerate(bodies)])
            for key, bodies in sim.comments.items()
        )
        again = plan(
            result,
            rules,
            crm_ledger=sim.crm_ledger,
            jira_ledger=sim.jira_ledger,
            crm_remote=sim.crm,
            jira_remote=sim.jira_remote(),
        )
        assert again.is_empty, again.render_text()
        # A normal cycle knows the ledgers and the labels of the issues it pulled: it agrees.
        pulled = {
            key: RemoteJira(key, labels, field_known=False) for key, labels in sim.labels.items()
        }
        assert plan(
            result,
            rules,
            crm_ledger=sim.crm_ledger,
            jira_ledger=sim.jira_ledger,
            jira_remote=pulled,
        ).is_empty
        # Then satisfaction moves (the later world's accounts and cases): converge again.
        result = run_merge(world, rules, accounts=later["accounts"], cases=later["cases"])


@SETTINGS
@given(worlds(), rule_sets())
def test_clearing_every_flag_gives_back_exactly_the_labels_it_took(
    world: dict[str, Any], rules: Rules
) -> None:
    sim = SimRemote.from_issues(world["issues"])
    original = dict(sim.labels)
    troubled = [
        account(a["id"], a["name"], csat=1.0, project_key=a["project_keys"])
        for a in world["accounts"]
    ]
    for accounts, cases in ((troubled, world["cases"]), (world["accounts"], [])):
        result = run_merge(world, rules, accounts=accounts, cases=cases)
        sim.apply(
            plan(
                result,
                rules,
                crm_ledger=sim.crm_ledger,
                jira_ledger=sim.jira_ledger,
                crm_remote=sim.crm,
                jira_remote=sim.jira_remote(),
            )
        )
    happy = [
        account(a["id"], a["name"], csat=5.0, project_key=a["project_keys"])
        for a in world["accounts"]
    ]
    result = run_merge(world, rules, accounts=happy, cases=[])
    sim.apply(
        plan(
            result,
            rules,
            crm_ledger=sim.crm_ledger,
            jira_ledger=sim.jira_ledger,
            crm_remote=sim.crm,
            jira_remote=sim.jira_remote(),
        )
    )
    assert sim.labels == original
    assert all(value is None for value in sim.fields.values())
    # Nothing is owned any more; what is left remembers levels, all ok, to tell a later
    # change from a first sight.
    assert all(
        entry.label is None
        and entry.field_value is None
        and all(level == "ok" for _, level in entry.flags)
        for entry in sim.jira_ledger.values()
    )


def test_field_ids_default_to_none() -> None:
    assert FieldIds() == FieldIds(None, None, None, None)
