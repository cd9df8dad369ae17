"""The unified model of SPEC section 6: frozen, slotted values; tuples, never lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

__all__ = [
    "STATUS_CATEGORIES",
    "Customer",
    "FixVersion",
    "FlagLevel",
    "Forecast",
    "HealthLevel",
    "ItemLink",
    "Link",
    "LinkProblem",
    "LinkRule",
    "LinkTarget",
    "Measure",
    "Milestone",
    "ProgressReport",
    "Project",
    "Satisfaction",
    "SatisfactionFlag",
    "SegmentRollup",
    "StatusCategory",
    "WorkItem",
    "fast_constructor",
]

_T = TypeVar("_T")


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor for a frozen, slotted dataclass, five times faster than its own.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``:
    2.5 us for a :class:`WorkItem`, a third of normalising an issue, and every issue of every
    cycle is normalised (SPEC section 9 wants 50,000 issues/s). This builds a mutable twin
    with the same slots whose ``__init__`` ends by relabelling it as ``cls`` (CPython allows
    ``__class__`` assignment between layout-identical classes; done there, it costs no
    wrapper call). The result is an ordinary ``cls`` instance: equal,
    hashable and frozen. Arguments and defaults are those of ``cls``. If the interpreter
    refuses, ``cls`` itself is returned.
    """
    specs: list[Any] = []
    for spec in fields(cls):  # type: ignore[arg-type]
        if spec.default is not MISSING:
            specs.append((spec.name, spec.type, field(default=spec.default)))
        elif spec.default_factory is not MISSING:
            specs.append((spec.name, spec.type, field(default_factory=spec.default_factory)))
        else:
            specs.append((spec.name, spec.type))

    def relabel(self: Any) -> None:
        self.__class__ = cls  # the last step of the twin's __init__: no wrapper call

    twin: Any = make_dataclass(
        f"_{cls.__name__}Builder",
        specs,
        slots=True,
        eq=False,
        repr=False,
        namespace={"__post_init__": relabel},
    )
    try:
        sample = twin(*([None] * len(fields(cls))))  # type: ignore[arg-type]
    except TypeError:
        return cls
    return twin if type(sample) is cls else cls


StatusCategory = Literal["todo", "in_progress", "done"]
FlagLevel = Literal["ok", "watch", "at_risk"]
HealthLevel = Literal["green", "amber", "red"]
LinkRule = Literal["jira_field", "crm_field", "static"]
Measure = Literal["count", "story_points", "estimate"]

STATUS_CATEGORIES: tuple[StatusCategory, ...] = ("todo", "in_progress", "done")
#: Flag levels from best to worst: comparisons use the index.
FLAG_LEVELS: tuple[FlagLevel, ...] = ("ok", "watch", "at_risk")


@dataclass(frozen=True, slots=True)
class FixVersion:
    """A Jira version an item is planned for."""

    id: str
    name: str
    released: bool
    archived: bool
    release_date: date | None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A Jira issue, normalised. ``link_value`` is the raw account-link field, stripped.

    The description is not kept: nothing here reads it, and flattening v3 ADF documents
    would cost more than the rest of the normalisation (see ``adf_to_text`` when needed).
    """

    id: str
    key: str
    #: The number in the key (``APOLLO-12`` -> 12; -1 if the key has none): the sort order.
    number: int
    project_key: str
    project_name: str
    issue_type: str
    is_epic: bool
    is_subtask: bool
    summary: str
    status: str
    status_category: StatusCategory
    assignee: str | None
    priority: str | None
    created: datetime | None
    updated: datetime | None
    #: When a done item entered the done category (``statuscategorychangedate``, else
    #: ``resolutiondate``: many workflows reach Done without a resolution); None when not
    #: done, or when the site gives neither.
    resolved: datetime | None
    due: date | None
    story_points: float | None
    original_estimate: int | None
    remaining_estimate: int | None
    labels: tuple[str, ...]
    fix_versions: tuple[FixVersion, ...]
    parent_key: str | None
    epic_key: str | None
    link_value: str | None

    @property
    def is_done(self) -> bool:
        """True when the status category is done."""
        return self.status_category == "done"


@dataclass(frozen=True, slots=True)
class Project:
    """A Jira project with its work items (epics included)."""

    key: str
    name: str
    url: str
    items: tuple[WorkItem, ...]


@dataclass(frozen=True, slots=True)
class Satisfaction:
    """A customer's satisfaction score and where it came from."""

    score: float
    scale: int
    source: Literal["account_field", "survey"]
    measured_at: datetime | None
    responses: int = 1
    #: promoter / passive / detractor when the scale is 0-10, else None.
    nps_category: Literal["promoter", "passive", "detractor"] | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """A CRM customer. ``id`` is its id in the CRM's canonical form (see mappings.ids)."""

    id: str
    name: str
    segment: str | None
    owner_id: str | None
    owner_name: str | None
    satisfaction: Satisfaction | None
    open_cases: int
    escalated_cases: int
    url: str
    #: Jira project keys the account's link field names (the crm_field rule).
    project_keys: tuple[str, ...] = ()
    #: Ids of customers merged into this one (canonical form): a link value naming one of
    #: them links to this customer.
    merged_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """How a work item belongs to one customer: the rule that matched and, for an inherited
    value, the parent or epic it came from. Items of a project linked alike share one."""

    customer_id: str
    project_key: str
    rule: LinkRule
    via: str | None = None


@dataclass(frozen=True, slots=True)
class ItemLink:
    """One work item belonging to one customer, and why.

    ``via`` is the key of the parent or epic whose link value was inherited, or None
    when the item's own value (or a project-level rule) matched.
    """

    item_key: str
    project_key: str
    customer_id: str
    rule: LinkRule
    via: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A linked (customer, project) pair: the items it covers and the rules that made it.

    ``rule`` is the rule that linked most of its items (config order breaks ties);
    ``scope`` is "project" when only project-level rules (crm_field, static) linked it.
    """

    customer_id: str
    project_key: str
    rule: LinkRule
    rules: tuple[LinkRule, ...]
    scope: Literal["item", "project"]
    item_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkProblem:
    """Work that could not be linked (or was linked only by a later rule), and why.

    ``item_key`` is None for a problem of the project-level rules (a static entry naming an
    unknown account); ``linked_by`` names the rule that linked the item anyway, if any.
    """

    item_key: str | None
    project_key: str
    reason: str
    linked_by: LinkRule | None = None


@dataclass(frozen=True, slots=True)
class Milestone:
    """The next unreleased fix version with a release date, and how done its items are."""

    name: str
    release_date: date
    overdue: bool
    items_total: int
    items_done: int
    percent_complete: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """When the remaining work should be done at recent throughput; ``date`` None + a note."""

    date: date | None
    note: str
    weekly_throughput: float
    remaining: int


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """Progress of one linked (customer, project) pair as of a moment."""

    customer_id: str
    customer_name: str
    project_key: str
    project_name: str
    as_of: datetime
    total: int
    todo: int
    in_progress: int
    done: int
    overdue: int
    blocked: int
    percent_complete: float
    measure: Measure
    measure_note: str
    next_milestone: Milestone | None
    forecast: Forecast
    health: HealthLevel
    health_reasons: tuple[str, ...]
    top_risks: tuple[str, ...]
    summary: str
    url: str

    @property
    def external_id(self) -> str:
        """The CRM report record's external id: ``<PROJECT KEY>:<customer id>``."""
        return f"{self.project_key}:{self.customer_id}"


@dataclass(frozen=True, slots=True)
class SatisfactionFlag:
    """A customer's flag level with human-readable reasons, and since when it holds."""

    customer_id: str
    level: FlagLevel
    reasons: tuple[str, ...]
    since: datetime


@dataclass(frozen=True, slots=True)
class SegmentRollup:
    """One customer group (segment): customers, satisfaction, flags, projects by health."""

    segment: str
    customers: int
    scored_customers: int
    average_satisfaction: float | None
    ok: int
    watch: int
    at_risk: int
    green: int
    amber: int
    red: int
    open_cases: int
    escalated_cases: int


#: Fast constructors of the values made once per issue or per account.
new_work_item: Callable[..., WorkItem] = fast_constructor(WorkItem)
new_customer: Callable[..., Customer] = fast_constructor(Customer)
new_satisfaction: Callable[..., Satisfaction] = fast_constructor(Satisfaction)
new_flag: Callable[..., SatisfactionFlag] = fast_constructor(SatisfactionFlag)
