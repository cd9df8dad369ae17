"""The [link] rules: order, inheritance, Id forms, project-level rules, and problems."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mappings.linking import LinkResult, link_items
from mappings.model import ItemLink, LinkTarget
from mappings.normalise_crm import build_customers
from mappings.normalise_jira import normalise_issues
from mappings.rules import LinkRules
from tests.mappings.factories import (
    ACME,
    AS_OF,
    FIELDS,
    GLOBEX,
    GONE,
    IDS,
    INITECH,
    NOBODY,
    RULES,
    account,
    issue,
)

ACCOUNTS = [
    account(ACME, "Acme"),
    account(GLOBEX, "Globex", project_key="ORION"),
    account(INITECH, "Initech", project_key="ORION"),
]


def link(
    raws: list[dict[str, Any]],
    rules: LinkRules = RULES.link,
    accounts: list[dict[str, Any]] = ACCOUNTS,
) -> LinkResult:
    customers = build_customers(accounts, rules=RULES.satisfaction, as_of=AS_OF, ids=IDS)
    return link_items(normalise_issues(raws, FIELDS), customers, rules, deleted_ids=[GONE], ids=IDS)


def customers_of(result: LinkResult, key: str) -> list[str]:
    return [target.customer_id for target in result.by_item.get(key, ())]


def reasons(result: LinkResult) -> dict[str | None, str]:
    return {problem.item_key: problem.reason for problem in result.problems}


def test_own_value_in_either_id_form() -> None:
    result = link(
        [
            issue("APOLLO-1", account=ACME),
            issue("APOLLO-2", account=ACME[:15]),
            issue("APOLLO-3", account=f"  {ACME.lower()} "),
        ]
    )
    for key in ("APOLLO-1", "APOLLO-2", "APOLLO-3"):
        assert result.item_links(key) == (ItemLink(key, "APOLLO", ACME, "jira_field", None),)
    (pair,) = result.links
    assert pair.customer_id == ACME and pair.project_key == "APOLLO"
    assert pair.rule == "jira_field" and pair.rules == ("jira_field",) and pair.scope == "item"
    assert pair.item_keys == ("APOLLO-1", "APOLLO-2", "APOLLO-3")
    assert result.problems == () and result.unlinked_projects == ()
    assert result.unlinked_customers == (GLOBEX, INITECH)


def test_items_inherit_from_epic_and_up_the_parent_chain() -> None:
    result = link(
        [
            issue("APOLLO-1", type_name="Epic", account=GLOBEX),
            issue("APOLLO-2", parent="APOLLO-1"),  # story of the epic
            issue("APOLLO-3", type_name="Sub-task", parent="APOLLO-2", parent_type="Story"),
            issue("APOLLO-4", parent="APOLLO-1", account=ACME),  # its own value wins
            issue("APOLLO-5", customfield_10014="APOLLO-1"),  # Server's Epic Link
        ]
    )
    assert result.by_item["APOLLO-2"] == (LinkTarget(GLOBEX, "APOLLO", "jira_field", "APOLLO-1"),)
    assert result.by_item["APOLLO-3"][0].via == "APOLLO-1"
    assert customers_of(result, "APOLLO-4") == [ACME]
    assert customers_of(result, "APOLLO-5") == [GLOBEX]
    assert customers_of(result, "APOLLO-1") == [GLOBEX]  # the epic is linked (not counted)


def test_inheritance_can_be_switched_off() -> None:
    raws = [issue("APOLLO-1", type_name="Epic", account=ACME), issue("APOLLO-2", parent="APOLLO-1")]
    result = link(raws, LinkRules(inherit_from_epic=False))
    assert "APOLLO-2" not in result.by_item
    assert reasons(result) == {"APOLLO-2": "no value"}


def test_a_parent_cycle_does_not_hang() -> None:
    result = link([issue("APOLLO-1", parent="APOLLO-2"), issue("APOLLO-2", parent="APOLLO-1")])
    assert reasons(result) == {"APOLLO-1": "no value", "APOLLO-2": "no value"}


def test_an_item_met_first_as_an_ancestor_and_its_own_parent_link_as_inheritance_says() -> None:
    result = link(
        [
            issue("APOLLO-2", type_name="Epic", account=GLOBEX),
            # A sub-task numbered before its story: the story is looked up first through it.
            issue("APOLLO-1", type_name="Sub-task", parent="APOLLO-5", parent_type="Story"),
            issue("APOLLO-5", customfield_10014="APOLLO-2"),
            issue("APOLLO-6", parent="APOLLO-6", parent_type="Story"),  # its own parent
        ]
    )
    assert result.by_item["APOLLO-1"] == (LinkTarget(GLOBEX, "APOLLO", "jira_field", "APOLLO-2"),)
    assert result.by_item["APOLLO-5"] == result.by_item["APOLLO-1"]
    assert reasons(result) == {"APOLLO-6": "no value"}


def test_problems_say_why() -> None:
    result = link(
        [
            issue("APOLLO-1"),
            issue("APOLLO-2", account=NOBODY),
            issue("APOLLO-3", account=GONE),
            issue("APOLLO-4", account="Acme Corp"),
            issue("APOLLO-5", type_name="Epic", account=NOBODY[:15]),
            issue("APOLLO-6", parent="APOLLO-5"),
        ]
    )
    assert reasons(result) == {
        "APOLLO-1": "no value",
        "APOLLO-2": f"unknown account id {NOBODY}",
        "APOLLO-3": f"account deleted {GONE}",
        "APOLLO-4": "invalid account id 'Acme Corp'",
        "APOLLO-5": f"unknown account id {NOBODY[:15]}",
        "APOLLO-6": f"unknown account id {NOBODY[:15]} (inherited from APOLLO-5)",
    }
    assert result.links == () and result.unlinked_projects == ("APOLLO",)
    assert all(problem.linked_by is None for problem in result.problems)


def test_a_reason_quotes_the_bad_value_itself_escaped_and_bounded() -> None:
    """Reasons are printed by run, status and reconcile: a value with terminal escapes or
    a line break must not reach a terminal raw, and a pasted page must not fill it."""
    pasted = "Acme Corporation, see the contract " * 10
    result = link(
        [
            issue("APOLLO-1", account="Acme\x1b[2J\nCorp\u202e"),
            issue("APOLLO-2", account=pasted),
            issue("APOLLO-3", account=GONE[:15]),
            issue("APOLLO-4", account=GONE.lower()),
        ]
    )
    got = reasons(result)
    assert got["APOLLO-1"] == "invalid account id 'Acme\\x1b[2J\\nCorp\\u202e'"
    assert got["APOLLO-2"] == f"invalid account id {pasted[:60] + '…'!r}"
    # The value as the Jira field holds it (what a person searches for), then the account.
    assert got["APOLLO-3"] == f"account deleted {GONE[:15]} (= {GONE})"
    assert got["APOLLO-4"] == f"account deleted {GONE.lower()} (= {GONE})"
    for reason in got.values():
        assert reason.isprintable() and len(reason) < 100


def test_crm_field_links_the_rest_of_a_project_to_every_account_naming_it() -> None:
    result = link(
        [
            issue("ORION-1", account=ACME),  # item-level rule first
            issue("ORION-2"),
            issue("ORION-3", account=NOBODY),  # bad value: linked by crm_field, still reported
        ]
    )
    assert customers_of(result, "ORION-1") == [ACME]
    assert customers_of(result, "ORION-2") == [GLOBEX, INITECH]
    assert customers_of(result, "ORION-3") == [GLOBEX, INITECH]
    (problem,) = result.problems
    assert problem.item_key == "ORION-3" and problem.linked_by == "crm_field"
    assert [(ln.customer_id, ln.rule, ln.scope, ln.item_keys) for ln in result.links] == [
        (ACME, "jira_field", "item", ("ORION-1",)),
        (GLOBEX, "crm_field", "project", ("ORION-2", "ORION-3")),
        (INITECH, "crm_field", "project", ("ORION-2", "ORION-3")),
    ]


def test_static_table_and_its_problems() -> None:
    rules = LinkRules(static=(("APOLLO", (ACME,)), ("ZED", (NOBODY, GONE))))
    result = link([issue("APOLLO-1"), issue("ZED-1")], rules)
    assert customers_of(result, "APOLLO-1") == [ACME]
    assert result.links[0].rule == "static" and result.links[0].scope == "project"
    assert reasons(result) == {
        None: f"unknown account id {NOBODY} (link.static)",
        "ZED-1": f"unknown account id {NOBODY} (link.static)",
    }


def test_configured_order_decides() -> None:
    raws = [issue("ORION-1", account=ACME)]
    crm_first = link(raws, LinkRules(order=("crm_field", "jira_field")))
    assert customers_of(crm_first, "ORION-1") == [GLOBEX, INITECH]
    only_static = link(raws, LinkRules(order=("static",), static=(("ORION", (ACME,)),)))
    assert only_static.by_item["ORION-1"] == (LinkTarget(ACME, "ORION", "static"),)
    nothing = link(raws, LinkRules(order=()))
    assert reasons(nothing) == {"ORION-1": "no value"}


def test_one_project_serves_several_customers_and_pairs_mix_rules() -> None:
    result = link(
        [
            issue("ORION-1", account=GLOBEX),
            issue("ORION-2", account=ACME),
            issue("ORION-3"),
            issue("ORION-4"),
        ]
    )
    globex = next(ln for ln in result.links if ln.customer_id == GLOBEX)
    assert globex.rules == ("jira_field", "crm_field") and globex.rule == "crm_field"
    assert globex.scope == "item" and globex.item_keys == ("ORION-1", "ORION-3", "ORION-4")
    assert [item.key for item in result.items_of(globex)] == list(globex.item_keys)
    assert {ln.customer_id for ln in result.links} == {ACME, GLOBEX, INITECH}


def test_input_order_does_not_matter() -> None:
    raws = [
        issue("APOLLO-1", type_name="Epic", account=GLOBEX),
        issue("APOLLO-2", parent="APOLLO-1"),
        issue("ORION-10"),
        issue("ORION-9", account=NOBODY),
    ]
    customers = build_customers(ACCOUNTS, rules=RULES.satisfaction, as_of=AS_OF, ids=IDS)
    items = normalise_issues(raws, FIELDS)
    forward = link_items(items, customers, RULES.link)
    backward = link_items(list(reversed(items)), list(reversed(customers)), RULES.link)
    assert forward == backward


def test_a_value_naming_a_merged_away_customer_links_to_the_survivor() -> None:
    """The CRM merged GONE into ACME (ACME's ``merged_ids``; GONE is deleted): work whose
    field still names GONE, in any of its forms, and work inheriting it, is ACME's."""
    merged = [account(ACME, "Acme", merged_ids=[GONE]), *ACCOUNTS[1:]]
    result = link(
        [
            issue("APOLLO-1", account=GONE[:15]),
            issue("APOLLO-2", type_name="Epic", account=GONE),
            issue("APOLLO-3", parent="APOLLO-2"),
            issue("APOLLO-4", account=ACME),
        ],
        accounts=merged,
    )
    for key in ("APOLLO-1", "APOLLO-2", "APOLLO-4"):
        assert customers_of(result, key) == [ACME]
    assert result.item_links("APOLLO-3") == (
        ItemLink("APOLLO-3", "APOLLO", ACME, "jira_field", "APOLLO-2"),
    )
    assert result.problems == ()
    (pair,) = result.links
    assert (pair.customer_id, len(pair.item_keys)) == (ACME, 4)
    # Without the merge, the same work is reported as linked to a deleted account.
    unmerged = link([issue("APOLLO-1", account=GONE)])
    assert reasons(unmerged) == {"APOLLO-1": f"account deleted {GONE}"}


def test_batches_share_one_customer_index_and_link_as_one_merge_does() -> None:
    from mappings.merge import CrmSide, merge

    raws = [
        issue("APOLLO-1", account=ACME),
        issue("APOLLO-2", account=GONE),
        issue("ORION-1"),
        issue("ORION-2", account=ACME[:15]),
        issue("ZED-1", account=NOBODY),
    ]
    rules = replace(RULES, link=LinkRules(static=(("ZED", (GLOBEX,)),)))

    def merged(part: list[dict[str, Any]], crm: CrmSide | None = None) -> Any:
        return merge(
            part,
            [] if crm else ACCOUNTS,
            rules=rules,
            as_of=AS_OF,
            deleted_account_ids=[GONE],
            crm=crm,
            customer_ids=IDS,
        )

    whole = merged(raws)
    first = merged(raws[:2])
    side = CrmSide.of(first)
    assert side.index is first.customer_index is not None
    rest = merged(raws[2:], side)
    assert rest.customer_index is side.index  # built once, by the first batch
    assert {**first.links.by_item, **rest.links.by_item} == dict(whole.links.by_item)
    assert first.links.problems + rest.links.problems == whole.links.problems
    assert set(first.links.unlinked_customers) & set(rest.links.unlinked_customers) == set(
        whole.links.unlinked_customers
    )

    other = merge(raws[2:], rules=RULES, as_of=AS_OF, crm=side, customer_ids=IDS)
    assert other.customer_index is not side.index  # other [link] rules: built again
    assert [t.customer_id for t in rest.links.by_item["ZED-1"]] == [GLOBEX]  # [link.static]
    assert "ZED-1" not in other.links.by_item  # no static table in those rules
