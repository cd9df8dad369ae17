"""The sandbox's demo world: a deterministic set of Jira and Salesforce records from a seed.

Both emulators load from one :class:`World`, so Jira issues point at Account Ids that the
Salesforce emulator holds. Generation is plain loops over a seeded ``random.Random``;
a 100,000-issue world builds in a few seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from connectors.sandbox.schema import JIRA_STATUSES, SEGMENTS

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce Id: key prefix, pod, base-62 number, case checksum."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
        if number == 0:
            break
    base = (prefix + "Dn" + digits.rjust(10, "0"))[:15]
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM[bits]
    return base + suffix


@dataclass(slots=True)
class SfUser:
    id: str
    name: str
    email: str


@dataclass(slots=True)
class SfAccount:
    id: str
    name: str
    segment: str
    csat: float | None
    owner_id: str
    jira_project_key: str | None
    website: str
    created: datetime
    modstamp: datetime


@dataclass(slots=True)
class SfCase:
    id: str
    account_id: str
    subject: str
    status: str
    is_closed: bool
    is_escalated: bool
    priority: str
    created: datetime
    modstamp: datetime


@dataclass(slots=True)
class SfSurveyResponse:
    id: str
    account_id: str
    score: int  # 0-10 (NPS scale)
    responded_at: datetime
    modstamp: datetime


@dataclass(slots=True)
class JiraUser:
    account_id: str
    name: str  # Server/DC username
    display_name: str
    email: str


@dataclass(slots=True)
class JiraProject:
    id: str
    key: str
    name: str
    lead_account_id: str
    #: Team-managed ("next-gen", ``simplified``): epics only in ``parent``, story points in
    #: "Story point estimate", no Epic Link (Cloud only; an older Server shows it as
    #: company-managed).
    team_managed: bool = False
    #: Field ids its field configuration hides: absent from its issues' ``fields``.
    hidden_fields: tuple[str, ...] = ()


@dataclass(slots=True)
class JiraVersion:
    id: str
    project_key: str
    name: str
    release_date: date | None
    released: bool
    archived: bool = False


@dataclass(slots=True)
class StatusChange:
    at: datetime
    from_status: str
    to_status: str


@dataclass(frozen=True, slots=True)
class Workflow:
    """What a project's workflow does with the resolution: real sites differ.

    A classic workflow sets a resolution on the way to Done and clears it on a reopening;
    many (simplified and team-managed ones among them) reach Done with none, so
    ``resolution`` and ``resolutiondate`` stay null; some keep the resolution when an item
    is reopened, so an open item carries one, and done again it keeps the first date.
    """

    name: str
    sets_resolution: bool = True
    clears_resolution: bool = True


CLASSIC = Workflow("classic")
NO_RESOLUTION = Workflow("done without resolution", sets_resolution=False)
KEEPS_RESOLUTION = Workflow("keeps resolution on reopen", clears_resolution=False)
_DONE_STATUSES = frozenset(name for name, (_, cat) in JIRA_STATUSES.items() if cat == "done")


def resolution_after(
    workflow: Workflow, resolved: datetime | None, from_status: str, to_status: str, at: datetime
) -> datetime | None:
    """The resolution date after a transition at ``at``, by the workflow's rules (Jira moves
    ``resolutiondate`` only when the resolution itself changes)."""
    was_done, done = from_status in _DONE_STATUSES, to_status in _DONE_STATUSES
    if done and not was_done:
        return (resolved or at) if workflow.sets_resolution else resolved
    if was_done and not done and workflow.clears_resolution:
        return None
    return resolved


def category_changed(issue: JiraIssue) -> datetime:
    """When the issue last changed status category (``statuscategorychangedate``): its
    creation until a transition moves it between To Do, In Progress and Done."""
    for change in reversed(issue.history):
        if JIRA_STATUSES[change.from_status][1] != JIRA_STATUSES[change.to_status][1]:
            return change.at
    return issue.created


@dataclass(slots=True)
class JiraIssue:
    id: int
    key: str
    project_key: str
    issue_type: str  # Epic, Story, Task, Bug, Sub-task
    summary: str
    description: str
    status: str  # To Do, In Progress, Blocked, Done
    priority: str
    created: datetime
    updated: datetime
    resolved: datetime | None
    due: date | None
    story_points: float | None
    estimate_seconds: int | None
    labels: list[str]
    fix_version_ids: list[str]
    parent_key: str | None  # the epic; a sub-task's story (or task, bug)
    account_id: str | None  # the "Salesforce Account" custom field
    assignee_account_id: str | None
    history: list[StatusChange] = field(default_factory=list)


@dataclass(slots=True)
class World:
    """Everything both emulators serve, generated from a seed."""

    seed: int
    anchor: datetime
    sf_users: list[SfUser]
    accounts: list[SfAccount]
    cases: list[SfCase]
    surveys: list[SfSurveyResponse]
    jira_users: list[JiraUser]
    projects: list[JiraProject]
    versions: list[JiraVersion]
    issues: list[JiraIssue]
    #: Project key -> its workflow (a project not listed has the classic one).
    workflows: dict[str, Workflow] = field(default_factory=dict)

    def workflow_of(self, project_key: str) -> Workflow:
        """The workflow of a project's issues."""
        return self.workflows.get(project_key, CLASSIC)


_COMPANY_EN = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Pied Piper",
    "Dunder",
    "Massive",
    "Nakatomi",
    "Blue Sun",
    "Virtucon",
    "Zorg",
    "Bluth",
    "Sterling",
)
_COMPANY_SUFFIX_EN = ("Corp", "Ltd", "Group", "Holdings", "Industries", "Labs", "Systems", "GmbH")
_COMPANY_CN = (
    "华信",
    "长城",
    "东方",
    "金桥",
    "天合",
    "远航",
    "明德",
    "新宇",
    "鼎盛",
    "瑞丰",
    "海川",
    "星辰",
)
_COMPANY_SUFFIX_CN = ("科技有限公司", "集团", "信息技术有限公司", "软件股份有限公司", "贸易公司")
_PROJECT_WORDS = (
    "APOLLO",
    "ORION",
    "HERMES",
    "ATLAS",
    "VEGA",
    "NOVA",
    "TITAN",
    "LYRA",
    "CYGNUS",
    "DRACO",
    "PHOENIX",
    "AURORA",
    "ZEPHYR",
    "HALO",
    "QUASAR",
    "PULSAR",
    "NEBULA",
    "COMET",
    "METEOR",
)
_PEOPLE_EN = (
    "Alice Chen",
    "Bob Martin",
    "Carol Diaz",
    "Dan Novak",
    "Eve Okafor",
    "Frank Li",
    "Grace Kim",
    "Heidi Berg",
    "Ivan Petrov",
    "Judy Alvarez",
    "Mallory Stone",
    "Niaj Patel",
    "Olivia Rossi",
)
_PEOPLE_CN = ("王伟", "李娜", "张敏", "刘洋", "陈静", "杨帆", "赵磊", "黄丽")
_VERBS = ("Implement", "Fix", "Migrate", "Document", "Refactor", "Test", "Design", "Deploy")
_OBJECTS = (
    "login flow",
    "invoice export",
    "SSO integration",
    "audit log",
    "search index",
    "billing API",
    "onboarding wizard",
    "data import",
    "reporting dashboard",
    "mobile sync",
    "webhook retries",
)
_SUMMARY_CN = (
    "实现单点登录",
    "修复导出错误",
    "迁移数据库",
    "优化搜索性能",
    "编写用户手册",
    "部署到生产环境",
)
_LABELS = ("backend", "frontend", "customer-request", "tech-debt", "security", "performance")
_PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
_CASE_SUBJECTS = (
    "Cannot log in",
    "Export fails",
    "Slow dashboard",
    "Billing question",
    "数据同步失败",
)


def _company(rng: random.Random, index: int) -> str:
    if rng.random() < 0.25:
        return rng.choice(_COMPANY_CN) + rng.choice(_COMPANY_SUFFIX_CN) + f"（{index}）"
    return f"{rng.choice(_COMPANY_EN)} {rng.choice(_COMPANY_SUFFIX_EN)} {index}"


def _project_key(index: int) -> str:
    word = _PROJECT_WORDS[index % len(_PROJECT_WORDS)]
    round_ = index // len(_PROJECT_WORDS)
    return word if round_ == 0 else f"{word[:5]}{round_}"


#: What the field configuration of a project that hides fields hides: priority and time
#: tracking (keys the model reads, whose absence must mean "no value").
HIDDEN_FIELDS = ("priority", "timeoriginalestimate", "timeestimate")
#: Share of standard issues that become sub-tasks, and of those with no account of their own.
_SUBTASK_SHARE = 0.15
_SUBTASK_INHERITS = 0.7


def _shape_projects(projects: list[JiraProject]) -> None:
    """Project styles, from their place in the list (so every world with two projects has
    both kinds): the second and every third after it are team-managed; the first hides
    fields (:data:`HIDDEN_FIELDS`)."""
    for index, project in enumerate(projects):
        project.team_managed = index % 3 == 1
        project.hidden_fields = HIDDEN_FIELDS if index == 0 else ()


def _add_subtasks(issues: list[JiraIssue], rng: random.Random) -> None:
    """Turn some standard issues into sub-tasks of an earlier standard issue of their
    project, making sub-task -> story -> epic chains. A sub-task mostly has no account of
    its own (it belongs to its story's customer) and no story points. ``rng`` is the
    world's second generator, so the rest of the world stays as the seed made it."""
    parents: dict[str, list[JiraIssue]] = {}
    for issue in issues:
        if issue.issue_type == "Epic":
            continue
        candidates = parents.setdefault(issue.project_key, [])
        if candidates and rng.random() < _SUBTASK_SHARE:
            parent = rng.choice(candidates)
            issue.issue_type = "Sub-task"
            issue.parent_key = parent.key
            issue.story_points = None
            if rng.random() < _SUBTASK_INHERITS:
                issue.account_id = None
        else:
            candidates.append(issue)


def default_anchor() -> datetime:
    """Today at 00:00 UTC: the world's "now", so due dates stay meaningful as days pass."""
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def generate_world(
    issues: int = 500, accounts: int = 100, seed: int = 1, anchor: datetime | None = None
) -> World:
    """Build a deterministic world of about ``issues`` Jira issues and ``accounts`` Accounts."""
    if issues < 0 or accounts < 0:
        raise ValueError("issues and accounts must be >= 0")
    rng = random.Random(seed)
    now = anchor or default_anchor()

    def ago(max_days: float, min_days: float = 0.0) -> datetime:
        seconds = rng.uniform(min_days * 86400, max_days * 86400)
        return (now - timedelta(seconds=seconds)).replace(microsecond=0)

    sf_users = [
        SfUser(salesforce_id("005", i + 1), name, f"user{i + 1}@sandbox.example")
        for i, name in enumerate(_PEOPLE_EN[:6] + _PEOPLE_CN[:3])
    ]

    n_projects = max(1, min(400, issues // 400 + 2)) if issues else 0
    project_keys = [_project_key(i) for i in range(n_projects)]

    account_list: list[SfAccount] = []
    for i in range(accounts):
        created = ago(900, 120)
        csat = None if rng.random() < 0.06 else round(rng.triangular(1.0, 5.0, 4.2), 1)
        project_key = (
            project_keys[rng.randrange(n_projects)] if n_projects and rng.random() < 0.3 else None
        )
        account_list.append(
            SfAccount(
                id=salesforce_id("001", i + 1),
                name=_company(rng, i + 1),
                segment=SEGMENTS[rng.randrange(len(SEGMENTS))],
                csat=csat,
                owner_id=sf_users[rng.randrange(len(sf_users))].id,
                jira_project_key=project_key,
                website=f"https://customer{i + 1}.example",
                created=created,
                modstamp=max(created, ago(90)),
            )
        )

    cases: list[SfCase] = []
    surveys: list[SfSurveyResponse] = []
    for account in account_list:
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            created = ago(200)
            closed = rng.random() < 0.6
            escalated = not closed and rng.random() < 0.2
            cases.append(
                SfCase(
                    id=salesforce_id("500", len(cases) + 1),
                    account_id=account.id,
                    subject=rng.choice(_CASE_SUBJECTS),
                    status="Closed" if closed else ("Escalated" if escalated else "Working"),
                    is_closed=closed,
                    is_escalated=escalated,
                    priority=rng.choice(("High", "Medium", "Low")),
                    created=created,
                    modstamp=max(created, ago(60)),
                )
            )
        for _ in range(rng.choice((0, 1, 2, 3))):
            responded = ago(240)
            surveys.append(
                SfSurveyResponse(
                    id=salesforce_id("a01", len(surveys) + 1),
                    account_id=account.id,
                    score=min(10, max(0, round(rng.gauss(7.5, 2.2)))),
                    responded_at=responded,
                    modstamp=responded,
                )
            )

    jira_users = [
        JiraUser(
            account_id=f"5b10ac8d82e05b22cc7d4e{i:02d}",
            name=f"user{i}",
            display_name=name,
            email=f"jira.user{i}@sandbox.example",
        )
        for i, name in enumerate(_PEOPLE_EN + _PEOPLE_CN)
    ]

    projects: list[JiraProject] = []
    versions: list[JiraVersion] = []
    project_versions: dict[str, list[JiraVersion]] = {}
    for i, key in enumerate(project_keys):
        projects.append(
            JiraProject(
                id=str(10000 + i),
                key=key,
                name=f"{key.title()} {'Rollout' if i % 2 else '实施项目'}",
                lead_account_id=jira_users[i % len(jira_users)].account_id,
            )
        )
        own: list[JiraVersion] = []
        for v in range(rng.randint(3, 6)):
            release = (now + timedelta(days=-75 + v * 35 + rng.randint(-10, 10))).date()
            own.append(
                JiraVersion(
                    id=str(10000 + len(versions)),
                    project_key=key,
                    name=f"{key.title()} {v + 1}.0",
                    release_date=release if rng.random() < 0.9 else None,
                    released=release < now.date(),
                )
            )
            versions.append(own[-1])
        project_versions[key] = own

    # Accounts served by each project: one to three customers each.
    served: dict[str, list[str]] = {}
    for key in project_keys:
        pool = [a.id for a in account_list if a.jira_project_key == key]
        extra = rng.sample(account_list, k=min(len(account_list), rng.randint(1, 3)))
        served[key] = (pool[:2] + [a.id for a in extra])[:3]

    issue_list: list[JiraIssue] = []
    counters = dict.fromkeys(project_keys, 0)
    epics: dict[str, list[JiraIssue]] = {key: [] for key in project_keys}
    next_id = 10000
    for n in range(issues):
        key = (
            project_keys[n % n_projects]
            if n < n_projects
            else project_keys[rng.randrange(n_projects)]
        )
        counters[key] += 1
        customers = served[key]
        project_epics = epics[key]
        make_epic = not project_epics or (len(project_epics) < 40 and rng.random() < 0.07)
        issue_type = "Epic" if make_epic else rng.choices(("Story", "Task", "Bug"), (6, 3, 2))[0]
        created = ago(365, 1)
        parent = None if make_epic or not project_epics else rng.choice(project_epics)
        # Account link: epics carry it; most children too; some only via the epic; a few none.
        roll = rng.random()
        if make_epic:
            account_id = rng.choice(customers) if customers and roll < 0.92 else None
        elif parent is not None and roll < 0.78:
            account_id = (
                parent.account_id
                if rng.random() < 0.9
                else (rng.choice(customers) if customers else None)
            )
        elif parent is not None and roll < 0.95:
            account_id = None  # linked only through its epic
        else:
            account_id = rng.choice(customers) if customers and roll < 0.97 else None

        age_days = (now - created).days
        p_done = min(0.85, 0.15 + age_days / 400)
        status_roll = rng.random()
        if status_roll < p_done:
            status = "Done"
        elif status_roll < p_done + 0.2:
            status = "In Progress"
        elif status_roll < p_done + 0.26:
            status = "Blocked"
        else:
            status = "To Do"
        history: list[StatusChange] = []
        moment = created
        path = {
            "To Do": [],
            "In Progress": ["In Progress"],
            "Blocked": ["In Progress", "Blocked"],
            "Done": ["In Progress", "Done"],
        }[status]
        previous = "To Do"
        for step in path:
            moment = min(now, moment + timedelta(seconds=rng.randint(7200, 86400 * 20)))
            history.append(StatusChange(moment, previous, step))
            previous = step
        resolved = moment if status == "Done" else None
        updated = max(moment, created + timedelta(minutes=rng.randint(0, 600)))
        updated = min(updated, now)
        due = (
            (created + timedelta(days=rng.randint(7, 120))).date() if rng.random() < 0.45 else None
        )
        own_versions = project_versions[key]
        fix_versions = (
            [own_versions[rng.randrange(len(own_versions))].id] if rng.random() < 0.6 else []
        )
        chinese = rng.random() < 0.2
        summary = (
            rng.choice(_SUMMARY_CN) if chinese else f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        )
        if make_epic:
            summary = f"Epic: {summary}"
        issue = JiraIssue(
            id=next_id,
            key=f"{key}-{counters[key]}",
            project_key=key,
            issue_type=issue_type,
            summary=summary,
            description=f"{summary}. Generated for the sandbox (seed {seed}).",
            status=status,
            priority=_PRIORITIES[min(4, int(rng.triangular(0, 5, 2)))],
            created=created,
            updated=updated,
            resolved=resolved,
            due=due,
            story_points=(
                float(rng.choice((1, 2, 3, 5, 8, 13)))
                if issue_type == "Story" and rng.random() < 0.85
                else None
            ),
            estimate_seconds=(
                rng.choice((1, 2, 4, 8, 16, 24)) * 3600
                if issue_type != "Epic" and rng.random() < 0.6
                else None
            ),
            labels=rng.sample(_LABELS, k=rng.choice((0, 0, 1, 1, 2))),
            fix_version_ids=fix_versions,
            parent_key=parent.key if parent else None,
            account_id=account_id,
            assignee_account_id=(
                jira_users[rng.randrange(len(jira_users))].account_id
                if rng.random() < 0.8
                else None
            ),
            history=history,
        )
        next_id += 1
        issue_list.append(issue)
        if make_epic:
            project_epics.append(issue)

    # Structure drawn from a second generator: the draws above stay as the seed made them.
    _shape_projects(projects)
    _add_subtasks(issue_list, random.Random(f"structure-{seed}"))
    workflows = _workflows(project_keys, seed)
    _mess_up_histories(issue_list, workflows, seed)

    return World(
        seed=seed,
        anchor=now,
        sf_users=sf_users,
        accounts=account_list,
        cases=cases,
        surveys=surveys,
        jira_users=jira_users,
        projects=projects,
        versions=versions,
        issues=issue_list,
        workflows=workflows,
    )


def _workflows(project_keys: list[str], seed: int) -> dict[str, Workflow]:
    """Each project's workflow: the first classic, the second reaching Done without a
    resolution (so every world has both), the rest drawn. A generator of its own keeps
    the rest of the world as the main one draws it."""
    rng = random.Random(f"workflows:{seed}")
    chosen: dict[str, Workflow] = {}
    for index, key in enumerate(project_keys):
        if index < 2:
            chosen[key] = (CLASSIC, NO_RESOLUTION)[index]
        else:
            chosen[key] = rng.choices((CLASSIC, NO_RESOLUTION, KEEPS_RESOLUTION), (5, 3, 2))[0]
    return chosen


def _mess_up_histories(issues: list[JiraIssue], workflows: dict[str, Workflow], seed: int) -> None:
    """Reopenings as real histories have them (some done items were done once before, some
    open items were done and reopened), then each resolution as its workflow leaves it.

    Reopenings fit between the issue's creation and its last change, so ``created`` and
    ``updated`` stay as generated.
    """
    rng = random.Random(f"histories:{seed}")
    for issue in issues:
        history = issue.history
        roll = rng.random()
        if issue.status == "Done" and len(history) == 2 and roll < 0.15:
            started, done = history
            span = (done.at - started.at).total_seconds()
            if span >= 3:
                first = started.at + timedelta(seconds=int(span * rng.uniform(0.2, 0.5)))
                back = first + timedelta(seconds=max(1, int(span * rng.uniform(0.1, 0.4))))
                history = [
                    started,
                    StatusChange(first, "In Progress", "Done"),
                    StatusChange(back, "Done", "In Progress"),
                    StatusChange(done.at, "In Progress", "Done"),
                ]
        elif issue.status == "In Progress" and len(history) == 1 and roll < 0.1:
            (reopened,) = history
            span = (reopened.at - issue.created).total_seconds()
            if span >= 3:
                began = issue.created + timedelta(seconds=max(1, int(span / 3)))
                finished = issue.created + timedelta(seconds=max(2, int(span * 2 / 3)))
                history = [
                    StatusChange(began, "To Do", "In Progress"),
                    StatusChange(finished, "In Progress", "Done"),
                    StatusChange(reopened.at, "Done", "In Progress"),
                ]
        workflow = workflows.get(issue.project_key, CLASSIC)
        resolved: datetime | None = None
        for change in history:
            resolved = resolution_after(
                workflow, resolved, change.from_status, change.to_status, change.at
            )
        issue.history = history
        issue.resolved = resolved
