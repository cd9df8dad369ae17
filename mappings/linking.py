"""Linking Jira work to CRM customers by the [link] rules (SPEC section 5).

Rules are tried in the configured order, per work item:

- ``jira_field``: the item's own account-link value, or (``inherit_from_epic``) the value
  of its parent, then its epic, followed up the chain; ids compare in the CRM's canonical
  form (``ids``, see :mod:`mappings.ids`), so two spellings of one customer's id match,
  and the id of a customer merged into another names the survivor (``merged_ids``).
- ``crm_field``: every account whose project-key field names the item's project.
- ``static``: the [link.static] table of project key -> account ids.

One project can serve several customers; each :class:`LinkTarget` records the rule that
matched. Work that no rule links is reported with the most specific reason found.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from mappings.ids import IdForm, plain_id
from mappings.model import (
    Customer,
    ItemLink,
    Link,
    LinkProblem,
    LinkRule,
    LinkTarget,
    WorkItem,
)
from mappings.normalise_crm import merged_aliases
from mappings.normalise_jira import canonical_order, is_canonical
from mappings.rules import LinkRules

__all__ = ["CustomerIndex", "LinkResult", "link_items"]

_NO_VALUE = "no value"
#: Characters of a bad link value a reason quotes (a text field can hold a whole page).
_SHOWN = 60


def _shown(value: str) -> str:
    """A link value as a reason quotes it: in quotes, control and invisible characters
    escaped (a reason is printed on terminals and in logs), at most :data:`_SHOWN` long."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What linking found: links per item and per (customer, project), and the problems."""

    #: item key -> how it is linked (several targets when several customers share a
    #: project). Items linked alike share one tuple: see :meth:`item_links` for a view.
    by_item: Mapping[str, tuple[LinkTarget, ...]] = field(hash=False)
    #: one per linked (customer, project), sorted by project key then customer id.
    links: tuple[Link, ...]
    problems: tuple[LinkProblem, ...]
    #: projects with work items of which none could be linked.
    unlinked_projects: tuple[str, ...]
    #: customers no work is linked to.
    unlinked_customers: tuple[str, ...]
    #: (project key, customer id) -> the pair's work items, in canonical order.
    pair_items: Mapping[tuple[str, str], tuple[WorkItem, ...]] = field(hash=False)

    def items_of(self, link: Link) -> tuple[WorkItem, ...]:
        """The work items of a linked pair."""
        return self.pair_items.get((link.project_key, link.customer_id), ())

    def item_links(self, item_key: str) -> tuple[ItemLink, ...]:
        """The links of one work item (empty when it is not linked)."""
        return tuple(
            ItemLink(item_key, t.project_key, t.customer_id, t.rule, t.via)
            for t in self.by_item.get(item_key, ())
        )


class _AccountCheck:
    """Resolves link values to customer ids, caching the verdict per distinct value."""

    __slots__ = ("_aliases", "_customers", "_deleted", "_ids", "cache")

    def __init__(
        self,
        customers: Mapping[str, Customer],
        deleted: frozenset[str],
        ids: IdForm,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._customers = customers
        self._deleted = deleted
        self._ids = ids
        self._aliases = aliases or {}
        self.cache: dict[str, tuple[str | None, str | None]] = {}

    def __call__(self, value: str) -> tuple[str | None, str | None]:
        """(customer id, None) when the value names a live account, else (None, reason)."""
        verdict = self.cache.get(value)
        if verdict is None:
            account_id = self._ids(value)
            if account_id is None:
                verdict = (None, f"invalid account id {_shown(value)}")
            elif account_id in self._customers:
                verdict = (account_id, None)
            elif self._aliases.get(account_id) in self._customers:
                # Merged into another customer: the survivor is who the work is for.
                verdict = (self._aliases[account_id], None)
            elif account_id in self._deleted:
                # The value as the field holds it (what a person searches for), and the
                # account it names when that is another form of the Id.
                same = account_id == value
                verdict = (
                    None,
                    f"account deleted {value}" + ("" if same else f" (= {account_id})"),
                )
            else:
                verdict = (None, f"unknown account id {value}")
            self.cache[value] = verdict
        return verdict


class _Inheritance:
    """The link value an item carries itself or inherits up its parent/epic chain."""

    __slots__ = ("_by_key", "_inherit", "memo")

    def __init__(self, by_key: Mapping[str, WorkItem], inherit: bool) -> None:
        self._by_key = by_key
        self._inherit = inherit
        self.memo: dict[str, tuple[str | None, str | None]] = {}

    def value(self, item: WorkItem) -> tuple[str | None, str | None]:
        """(value, key it came from: None for the item's own value)."""
        if item.link_value is not None:
            return item.link_value, None
        return self.inherited(item)

    def inherited(self, item: WorkItem) -> tuple[str | None, str | None]:
        """(value, key of the ancestor holding it) for an item without a value of its own."""
        if not self._inherit:
            return None, None
        return self._from_ancestors(item, {item.key})

    def _from_ancestors(self, item: WorkItem, seen: set[str]) -> tuple[str | None, str | None]:
        memo = self.memo.get(item.key)
        if memo is not None:
            return memo
        found: tuple[str | None, str | None] = (None, None)
        for key in (item.parent_key, item.epic_key):
            if key is None or key in seen:
                continue
            ancestor = self._by_key.get(key)
            if ancestor is None:
                continue
            if ancestor.link_value is not None:
                found = (ancestor.link_value, ancestor.key)
                break
            seen.add(key)
            found = self._from_ancestors(ancestor, seen)
            if found[0] is not None:
                break
        self.memo[item.key] = found
        return found


def _project_rules(
    customers: Sequence[Customer],
    static: Iterable[tuple[str, tuple[str, ...]]],
    check: _AccountCheck,
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, str]]:
    """Per project key: accounts naming it (crm_field), static accounts, static problems."""
    crm: dict[str, list[str]] = defaultdict(list)
    for customer in customers:
        for key in customer.project_keys:
            crm[key].append(customer.id)
    static_ok: dict[str, tuple[str, ...]] = {}
    static_problem: dict[str, str] = {}
    for project_key, values in static:
        good: list[str] = []
        for value in values:
            customer_id, reason = check(value)
            if customer_id is not None:
                good.append(customer_id)
            elif project_key not in static_problem and reason is not None:
                static_problem[project_key] = f"{reason} (link.static)"
        if good:
            static_ok[project_key] = tuple(sorted(set(good)))
    return {k: tuple(sorted(set(v))) for k, v in crm.items()}, static_ok, static_problem


class CustomerIndex:
    """The customers as linking looks them up: by id, the deleted ids, the verdict of each
    link value seen so far, and per project key the accounts naming it (crm_field) and the
    [link.static] ones.

    Built once per cycle (:meth:`build`) and shared by the merges of its batches of
    projects (:class:`mappings.merge.CrmSide` carries it): the customers do not change
    between batches, so only the verdicts grow, one per link value not seen before.
    """

    __slots__ = (
        "by_id",
        "check",
        "crm_by_project",
        "ids",
        "rules",
        "sorted_ids",
        "static_by_project",
        "static_problems",
    )

    def __init__(
        self,
        customers: Sequence[Customer],
        rules: LinkRules,
        deleted_ids: Iterable[str] = (),
        ids: IdForm = plain_id,
    ) -> None:
        self.rules, self.ids = rules, ids
        self.by_id: dict[str, Customer] = {customer.id: customer for customer in customers}
        #: every customer id, sorted (the unlinked ones of a merge keep this order).
        self.sorted_ids: tuple[str, ...] = tuple(sorted(self.by_id))
        deleted = frozenset(cid for cid in map(ids, deleted_ids) if cid is not None)
        self.check = _AccountCheck(self.by_id, deleted, ids, merged_aliases(customers))
        self.crm_by_project, self.static_by_project, self.static_problems = _project_rules(
            customers, rules.static, self.check
        )

    def serves(self, rules: LinkRules, ids: IdForm) -> bool:
        """Whether this index was built for these rules and this id form."""
        return self.ids is ids and (self.rules is rules or self.rules == rules)


def link_items(
    items: Iterable[WorkItem],
    customers: Sequence[Customer],
    rules: LinkRules,
    deleted_ids: Iterable[str] = (),
    *,
    index: Mapping[str, WorkItem] | None = None,
    ids: IdForm = plain_id,
    accounts: CustomerIndex | None = None,
) -> LinkResult:
    """Link work items to customers by ``rules``; report what could not be linked and why.

    ``index`` (item key -> item, for the parent/epic lookups) saves building it again when
    the caller has one; ``ids`` gives a link value's customer id in the CRM's canonical form.
    ``accounts`` is the :class:`CustomerIndex` of ``customers`` and ``deleted_ids`` built
    earlier (a previous batch's); without it, or when it was built for other rules, one is
    built here.
    """
    ordered = items if isinstance(items, tuple) and is_canonical(items) else canonical_order(items)
    by_key = index if index is not None else {item.key: item for item in ordered}
    if accounts is None or not accounts.serves(rules, ids):
        accounts = CustomerIndex(customers, rules, deleted_ids, ids)
    check = accounts.check
    inheritance = _Inheritance(by_key, rules.inherit_from_epic)
    crm_by_project = accounts.crm_by_project
    static_by_project = accounts.static_by_project
    static_problems = accounts.static_problems
    order = rules.order
    by_item: dict[str, tuple[LinkTarget, ...]] = {}
    problems = [
        LinkProblem(None, project_key, reason)
        for project_key, reason in sorted(static_problems.items())
    ]
    # Items come grouped by project: pairs are collected per project, keyed by customer,
    # and link targets are shared by the items of a project linked alike.
    pairs: dict[str, dict[str, list[LinkTarget]]] = {}
    pair_items: dict[str, dict[str, list[WorkItem]]] = {}
    projects_seen: dict[str, bool] = {}
    verdicts = check.cache
    inherited = inheritance.inherited
    inherited_memo = inheritance.memo
    inherit = rules.inherit_from_epic
    jira_first = bool(order) and order[0] == "jira_field"
    current: str | None = None
    here_links: dict[str, list[LinkTarget]] = {}
    here_items: dict[str, list[WorkItem]] = {}
    shared: dict[object, tuple[LinkTarget, ...]] = {}
    for item in ordered:
        project_key = item.project_key
        if project_key != current:
            current = project_key
            here_links = pairs.setdefault(project_key, {})
            here_items = pair_items.setdefault(project_key, {})
            shared = {}
        value = item.link_value
        if jira_first and value is not None:
            # The common case first: the item's own value names a live account.
            customer_id = (verdicts.get(value) or check(value))[0]
            if customer_id is not None:
                targets = shared.get(customer_id)
                if targets is None:
                    targets = shared[customer_id] = (
                        LinkTarget(customer_id, project_key, "jira_field"),
                    )
                by_item[item.key] = targets
                if customer_id in here_items:
                    here_links[customer_id].append(targets[0])
                    here_items[customer_id].append(item)
                else:
                    here_links[customer_id] = [targets[0]]
                    here_items[customer_id] = [item]
                projects_seen[project_key] = True
                continue
        found: tuple[LinkTarget, ...] | None = None
        reason: str | None = None
        for rule in order:
            if rule == "jira_field":
                via = None
                if value is None:
                    # Most often the parent holds the value: looked up here, as
                    # _Inheritance would, without its calls.
                    key = item.key
                    memo = inherited_memo.get(key)
                    parent = item.parent_key
                    if memo is not None:
                        value, via = memo
                    elif (
                        inherit
                        and parent is not None
                        and parent != key
                        and (ancestor := by_key.get(parent)) is not None
                        and ancestor.link_value is not None
                    ):
                        value, via = inherited_memo[key] = (ancestor.link_value, ancestor.key)
                    else:
                        value, via = inherited(item)
                    if value is None:
                        continue
                customer_id, why = verdicts.get(value) or check(value)
                if customer_id is not None:
                    found = shared.get((customer_id, via))
                    if found is None:
                        found = shared[(customer_id, via)] = (
                            LinkTarget(customer_id, project_key, "jira_field", via),
                        )
                    break
                if reason is None:
                    reason = why if via is None else f"{why} (inherited from {via})"
            else:
                found = shared.get(rule)
                if found is None:
                    table = crm_by_project if rule == "crm_field" else static_by_project
                    found = shared[rule] = tuple(
                        LinkTarget(cid, project_key, rule) for cid in table.get(project_key, ())
                    )
                if found:
                    break
                if rule == "static" and reason is None:
                    reason = static_problems.get(project_key)
        key = item.key
        if found:
            by_item[key] = found
            for target in found:
                here_links.setdefault(target.customer_id, []).append(target)
                here_items.setdefault(target.customer_id, []).append(item)
            projects_seen[project_key] = True
            if reason is not None:
                problems.append(LinkProblem(key, project_key, reason, found[0].rule))
        else:
            projects_seen.setdefault(project_key, False)
            problems.append(LinkProblem(key, project_key, reason or _NO_VALUE))
    links_out = tuple(
        _pair_link(cid, pk, pairs[pk][cid], pair_items[pk][cid], order)
        for pk in sorted(pairs)
        for cid in sorted(pairs[pk])
    )
    linked_customers = {link.customer_id for link in links_out}
    return LinkResult(
        by_item=by_item,
        links=links_out,
        problems=tuple(problems),
        unlinked_projects=tuple(sorted(k for k, linked in projects_seen.items() if not linked)),
        unlinked_customers=tuple(c for c in accounts.sorted_ids if c not in linked_customers),
        pair_items={
            (pk, cid): tuple(group)
            for pk, per_customer in pair_items.items()
            for cid, group in per_customer.items()
        },
    )


def _pair_link(
    customer_id: str,
    project_key: str,
    targets: list[LinkTarget],
    items: list[WorkItem],
    order: Sequence[LinkRule],
) -> Link:
    present = set(map(_rule_of, targets))
    rules = tuple(rule for rule in order if rule in present)
    if len(rules) == 1:
        primary = rules[0]  # the common case: one rule linked all of the pair's items
    else:
        counts = Counter(map(_rule_of, targets))
        primary = max(rules, key=lambda rule: (counts[rule], -order.index(rule)))
    scope: Literal["item", "project"] = "item" if "jira_field" in present else "project"
    return Link(
        customer_id=customer_id,
        project_key=project_key,
        rule=primary,
        rules=rules,
        scope=scope,
        item_keys=tuple(map(_key_of, items)),
    )


_rule_of = attrgetter("rule")
_key_of = attrgetter("key")
