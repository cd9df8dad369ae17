"""One sync cycle: pull -> store -> merge -> plan -> push -> record (SPEC section 7).

The engine wires the connectors, the mapping layer and the state store. Errors are
classified once, here, into the exit codes of SPEC section 4.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from mappings.model import LinkProblem
from mappings.rules import Rules
from mappings.validate import IssueCheck
from sync import budget
from sync.config import Config
from sync.derive import BatchedDerive, derive, projects_to_derive, rules_digest
from sync.exitcodes import ExitCode
from sync.pull import Changes, Overlay, PullProgress, pull_crm, pull_jira
from sync.push import PushProgress, PushResult, push, record_batch, record_end
from sync.remote import (
    Remotes,
    crm_form,
    crm_needs,
    jira_fields,
    prepare_crm,
    prepare_jira,
)
from sync.store import Store, repo
from sync.workers import Assignment, everything

log = logging.getLogger(__name__)


def sides(config: Config) -> tuple[str, str]:
    """The two sides as the meters, the run history and the counts name them."""
    return ("jira", config.crm.side)


#: Link problems a cycle's result lists at most (``link_problems`` counts them all;
#: ``status`` reads every stored one).
LINK_PROBLEMS_LISTED = 1000


@dataclass(frozen=True)
class CycleOptions:
    """How to run one cycle (the flags of ``run``)."""

    dry_run: bool = False
    full: bool = False
    only: Literal["pull", "push"] | None = None
    #: Told how many records the pull has read so far (the CLI's progress bars).
    progress: PullProgress | None = field(default=None, compare=False)
    #: Told each side's writes handled out of those due (the CLI's push bars).
    push_progress: PushProgress | None = field(default=None, compare=False)


@dataclass
class CycleResult:
    """What one cycle did, for the CLI, the run history and the metrics."""

    run_id: int | None
    status: str = "ok"
    exit_code: ExitCode = ExitCode.OK
    message: str = ""
    pulled: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    link_problems: int = 0
    #: Records the pull set aside this cycle (listed up to sync.pull.LISTED), how many in
    #: all, and how many set-aside records were read cleanly again (or found gone).
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    quarantined_count: int = 0
    released: int = 0
    #: The first :data:`LINK_PROBLEMS_LISTED` of them: project, item (None: the
    #: [link.static] table), reason naming the value, and the rule that linked it anyway.
    link_problem_list: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Whether an API budget stopped the cycle: which side's and which limit, the writes
    #: left queued, when it resumes, and the calls left today per side (sync.budget).
    budget: dict[str, Any] = field(default_factory=dict)
    #: What the cycle was doing (the budget message says where it stopped).
    stage: str = field(default="start", compare=False)
    plan: dict[str, Any] | None = None
    plan_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``run --json``)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "pulled": self.pulled,
            "planned": self.planned,
            "written": self.written,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "link_problems": self.link_problems,
            "quarantined": {
                "count": self.quarantined_count,
                "released": self.released,
                "records": self.quarantined,
            },
            "link_problem_list": self.link_problem_list,
            "calls": self.calls,
            "budget": self.budget,
            **({"plan": self.plan} if self.plan is not None else {}),
        }


class Engine:
    """Runs cycles for one config against one state store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        remotes: Remotes,
        *,
        clock: Callable[[], datetime] | None = None,
        worker: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.store = store
        self.remotes = remotes
        self.clock = clock or (lambda: datetime.now(UTC))
        self.worker = worker or f"run@{socket.gethostname()}"
        self.should_stop = should_stop
        self._allowances: dict[str, budget.Allowance] = {}

    def run(
        self, options: CycleOptions = CycleOptions(), assignment: Assignment | None = None
    ) -> CycleResult:
        """One cycle over ``assignment`` (default: every shard); never raises for remote or
        config trouble (see the result's exit code)."""
        work = assignment or everything()
        now = self.clock()
        run_id = None
        if not options.dry_run:
            with self.store.transaction() as tx:
                # Runs left "running" by a killed process: the caller holds the run lock
                # (SQLite) or its shards' leases (PostgreSQL), so they can be told apart.
                sqlite = self.store.dialect != "postgresql"
                repo.mark_interrupted(
                    tx,
                    repo.dead_runs(
                        tx, lock="mine" if sqlite else "unknown", leases_expire=not sqlite
                    ),
                )
                run_id = repo.start_run(
                    tx, self.worker, dry_run=False, full=options.full, started_at=now
                )
        result = CycleResult(run_id=run_id)
        log.info(
            "cycle%s started%s",
            f" (run {run_id})" if run_id is not None else "",
            _mode(options),
        )
        self._set_budgets(now)
        stopped_by: BudgetExhausted | None = None
        try:
            self._cycle(options, work, now, result)
        except BudgetExhausted as exc:
            result.status, result.exit_code = "budget", ExitCode.OK
            stopped_by = exc
        except ConfigError as exc:
            result.status, result.exit_code = "failed", ExitCode.USAGE
            result.message = str(exc)
        except (AuthError, UnreachableError, RetriableError) as exc:
            result.status, result.exit_code = "failed", ExitCode.REMOTE
            result.message = str(exc)
        except (RemoteError, ConnectorError) as exc:
            result.status, result.exit_code = "failed", ExitCode.REMOTE
            result.message = str(exc)
        crm_side = self.remotes.crm.side
        result.calls = {
            "jira": self.remotes.jira_meter.snapshot(),
            crm_side: self.remotes.crm_meter.snapshot(),
        }
        self._say_budget(result, stopped_by, options, now)
        if not options.dry_run:
            self._finish(result, now)
        log.info(
            "cycle ended: %s (exit %d); calls: jira %s, %s %s",
            result.status,
            int(result.exit_code),
            _calls_text(result.calls["jira"]),
            crm_side,
            _calls_text(result.calls[crm_side]),
        )
        return result

    # -- the cycle --------------------------------------------------------------------------

    def _cycle(
        self, options: CycleOptions, work: Assignment, now: datetime, result: CycleResult
    ) -> None:
        config, store = self.config, self.store
        save = not options.dry_run
        jira, crm = self.remotes.jira, self.remotes.crm
        result.stage = "sign-in and metadata reads"
        field_ids = prepare_jira(jira, store, now, config, refresh=options.full, save=save)
        rules = config.mapping_rules(field_ids)
        prepare_crm(crm, store, now, crm_needs(config), refresh=options.full, save=save)
        log.info("metadata ready: Jira fields and server, %s describes", crm.side)
        overlay = Overlay() if options.dry_run else None
        changes = Changes()
        held = list(work.projects) if work.projects is not None else None
        result.stage = "pull"
        try:
            self._pull(options, work, now, rules, field_ids, changes, overlay, held)
        finally:
            # What was stored before a budget stop or a fault counts as pulled.
            result.pulled = dict(changes.counts)
            result.quarantined = [
                {
                    "side": r["side"],
                    "kind": r["kind"],
                    "record": r["record_id"],
                    "reason": r["reason"],
                }
                for r in changes.quarantined
            ]
            result.quarantined_count = changes.quarantined_count
            result.released = changes.released
        log.info(
            "pulled: %s; set aside %d, read again %d",
            counts_text(result.pulled),
            result.quarantined_count,
            result.released,
        )
        result.stage = "derive"
        if options.only == "pull" or self.should_stop():
            self._set_aside_status(result)
            return
        self._after_pull(options, work, now, rules, changes, overlay, held, result)
        self._set_aside_status(result)

    def _pull(
        self,
        options: CycleOptions,
        work: Assignment,
        now: datetime,
        rules: Rules,
        field_ids: Any,
        changes: Changes,
        overlay: Overlay | None,
        held: list[str] | None,
    ) -> None:
        config, store = self.config, self.store
        jira, crm = self.remotes.jira, self.remotes.crm
        if options.only != "push":
            if held != []:
                pull_jira(
                    jira,
                    store,
                    jira_fields(field_ids),
                    changes,
                    now,
                    full=options.full,
                    overlay=overlay,
                    projects=held,
                    progress=options.progress,
                    check=IssueCheck(field_ids, field_names(config, field_ids)),
                )
            if work.crm:
                pull_crm(
                    crm,
                    store,
                    config,
                    changes,
                    now,
                    full=options.full,
                    overlay=overlay,
                    progress=options.progress,
                )

    def _set_aside_status(self, result: CycleResult) -> None:
        """A cycle that set records aside finished but did not take everything in: exit 1,
        like a parked write (unless something worse already set the exit code)."""
        if not result.quarantined_count or result.exit_code not in (ExitCode.OK, ExitCode.PARKED):
            return
        said = (
            f"{result.quarantined_count} record(s) could not be read and were set aside (read "
            "again next cycle)"
        )
        if result.exit_code == ExitCode.PARKED:
            result.message = f"{result.message}; and {said}"
            return
        result.status, result.exit_code = "parked", ExitCode.PARKED
        result.message = f"{said}; `jira-crm-sync status` lists them with the reason"

    def _after_pull(
        self,
        options: CycleOptions,
        work: Assignment,
        now: datetime,
        rules: Rules,
        changes: Changes,
        overlay: Overlay | None,
        held: list[str] | None,
        result: CycleResult,
    ) -> None:
        config, store = self.config, self.store
        jira, crm = self.remotes.jira, self.remotes.crm
        digest = rules_digest(rules)
        projects, engine_state = projects_to_derive(
            store, changes, now.date(), digest, full=options.full or options.dry_run, held=held
        )
        log.info("deriving %s", _projects_text(projects))
        if projects != []:
            if not self._derive_and_record(
                options, rules, projects, engine_state, now, result, overlay
            ):
                return
        elif options.dry_run:
            result.plan, result.plan_text = {}, ""
            return
        log.info("planned: %s", counts_text(result.planned))
        # Push even when nothing needed deriving: writes a killed run left queued, parked
        # writes whose backoff is over, and what a budget stop left are due now.
        pushed = PushResult()
        shards = None if work.projects is None else work.shards()
        result.stage = "push"
        try:
            push(
                store,
                jira,
                crm,
                now,
                result.run_id,
                pushed,
                shards,
                self.should_stop,
                progress=options.push_progress,
            )
        finally:
            result.written = pushed.written
            result.failed = pushed.failed
        log.info("written: %s; parked %d", counts_text(result.written), len(result.failed))
        if config.report.upload and work.crm and not self.should_stop():
            from sync.report.upload import upload_reports  # Jinja2 only when uploads are on

            result.stage = "report upload"
            uploads = upload_reports(config, store, crm, now, should_stop=self.should_stop)
            if uploads.uploaded:
                pushed.count("report_uploads", len(uploads.uploaded))
            pushed.failed.extend(uploads.failed)  # reported like a parked record, not fatal
        if pushed.failed:
            result.status, result.exit_code = "parked", ExitCode.PARKED
            result.message = (
                f"{len(pushed.failed)} record(s) were rejected and parked for retry; "
                "`jira-crm-sync status` lists them with their errors"
            )

    def _derive_and_record(
        self,
        options: CycleOptions,
        rules: Any,
        projects: list[str] | None,
        engine_state: dict[str, repo.DeriveState],
        now: datetime,
        result: CycleResult,
        overlay: Overlay | None,
    ) -> bool:
        """Merge, plan and (unless a dry run) record and queue; False for a dry run.

        A real run derives and records in batches of projects (memory stays flat as the
        store grows); the derive state is saved only after the last batch
        and the flags, so a crash in between derives again what was not recorded."""
        config, store = self.config, self.store
        if options.dry_run:
            derived = derive(
                store,
                rules,
                projects,
                now,
                jira_url=config.jira.url,
                instance_url=self.remotes.crm.instance_url,
                overlay=overlay,
                survey_window_days=config.satisfaction.survey.window_days,
                form=crm_form(config),
            )
            plan = derived.plan
            problems = derived.result.links.problems
            result.link_problems = len(problems)
            result.link_problem_list = [
                link_problem_dict(p) for p in problems[:LINK_PROBLEMS_LISTED]
            ]
            result.conflicts = [c.as_dict() for c in plan.conflicts]
            result.planned = {
                f"{self.remotes.crm.side}_records": len(plan.crm),
                "jira_issues": len(plan.jira),
            }
            result.plan = plan.as_dict()
            result.plan_text = plan.render_text()
            log.info("planned (a dry run: nothing is written): %s", counts_text(result.planned))
            return False
        batches = BatchedDerive(
            store,
            rules,
            projects,
            now,
            jira_url=config.jira.url,
            instance_url=self.remotes.crm.instance_url,
            survey_window_days=config.satisfaction.survey.window_days,
            form=crm_form(config),
        )
        item_problems = 0
        table_problems: set[Any] = set()  # [link.static] problems: every batch repeats them
        listed: list[dict[str, Any]] = []
        conflicts: list[dict[str, Any]] = []
        crm_records = f"{self.remotes.crm.side}_records"
        planned = {crm_records: 0, "jira_issues": 0}
        for batch in batches:
            for problem in batch.result.links.problems:
                if problem.item_key is None:
                    table_problems.add(problem)
                else:
                    item_problems += 1
                    if len(listed) < LINK_PROBLEMS_LISTED:
                        listed.append(link_problem_dict(problem))
            conflicts.extend(c.as_dict() for c in batch.plan.conflicts)
            planned[crm_records] += len(batch.plan.crm)
            planned["jira_issues"] += len(batch.plan.jira)
            record_batch(store, batch, result.run_id, now)
            del batch  # before the next one is derived
        record_end(store, batches.end, now)
        result.link_problems = item_problems + len(table_problems)
        table = [link_problem_dict(p) for p in sorted(table_problems, key=_problem_order)]
        result.link_problem_list = (table + listed)[:LINK_PROBLEMS_LISTED]
        result.conflicts = conflicts
        result.planned = planned
        with store.transaction() as tx:
            repo.save_derive_states(tx, engine_state, at=now)
        return True

    # -- budgets and bookkeeping ------------------------------------------------------------

    def _set_budgets(self, now: datetime) -> None:
        with self.store.read() as conn:
            used = {side: repo.calls_today(conn, side, now.date()) for side in sides(self.config)}
        self._allowances = budget.allowances(self.config, used)
        self.remotes.jira_meter.reset(self._allowances["jira"].calls)
        self.remotes.crm_meter.reset(self._allowances[self.remotes.crm.side].calls)

    def _say_budget(
        self,
        result: CycleResult,
        exc: BudgetExhausted | None,
        options: CycleOptions,
        now: datetime,
    ) -> None:
        """The result's ``budget`` object, and for a budget stop the message saying which
        budget stopped the cycle, the writes left queued and when the work resumes."""
        if exc is None:
            result.budget = budget.state(self._allowances, result.calls)
            return
        side = exc.side or "jira"
        meter = self.remotes.jira_meter if side == "jira" else self.remotes.crm_meter
        queued = None
        if not options.dry_run:
            with self.store.read() as conn:
                counts = repo.counts(conn)
            queued = counts["pending"] + counts["inflight"]
        result.message, result.budget = budget.stopped(
            side,
            self._allowances,
            result.calls,
            spent=meter.remaining == 0,
            queued=queued,
            stage=result.stage,
            now=now,
        )

    def _finish(self, result: CycleResult, now: datetime) -> None:
        assert result.run_id is not None
        finish_run(
            self.store,
            result.run_id,
            day=now.date(),
            status=result.status,
            exit_code=int(result.exit_code),
            calls=result.calls,
            pulled=result.pulled,
            written={**result.written, "failed": len(result.failed)},
            message=result.message,
            finished_at=self.clock(),
        )


def counts_text(counts: dict[str, int]) -> str:
    """``40 jira_issues, 3 report_records`` (or ``nothing``): a cycle's counts in a log
    line."""
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"


def _calls_text(calls: dict[str, Any]) -> str:
    return f"{calls['total']} ({calls['reads']} reads, {calls['writes']} writes)"


def _projects_text(projects: list[str] | None, shown: int = 10) -> str:
    if projects is None:
        return "every project in scope"
    if not projects:
        return "no project (nothing changed)"
    more = f" and {len(projects) - shown} more" if len(projects) > shown else ""
    return f"{len(projects)} project(s): {', '.join(projects[:shown])}{more}"


def _mode(options: CycleOptions) -> str:
    flags = [
        *(["dry run"] if options.dry_run else []),
        *(["full"] if options.full else []),
        *([f"only {options.only}"] if options.only else []),
    ]
    return f" ({', '.join(flags)})" if flags else ""


def field_names(config: Config, ids: Any) -> dict[str, str]:
    """Field ids -> the names the config gives them (for the reasons of set-aside issues)."""
    names = {
        ids.account_link: config.link.jira_field,
        ids.story_points: config.progress.story_points_field,
        ids.flag_field: config.push.jira.field,
        ids.epic_link: "Epic Link",
    }
    return {k: v for k, v in names.items() if k}


def link_problem_dict(problem: LinkProblem) -> dict[str, Any]:
    """A link problem as ``run --json`` and ``reconcile --json`` list it."""
    return {
        "project": problem.project_key,
        "item": problem.item_key,
        "reason": problem.reason,
        "linked_by": problem.linked_by,
    }


def _problem_order(problem: LinkProblem) -> tuple[str, str]:
    return problem.project_key, problem.reason


def finish_run(
    store: Store,
    run_id: int,
    *,
    day: date,
    status: str,
    exit_code: int,
    calls: dict[str, dict[str, Any]],
    pulled: dict[str, int],
    written: dict[str, int],
    message: str,
    finished_at: datetime,
) -> None:
    """Record how a run (a cycle, or a reconcile --apply) ended and the calls it made
    today, in one transaction: the day's budget counts what every run spent."""
    with store.transaction() as tx:
        for side in calls:
            repo.add_calls(tx, side, day, int(calls[side]["total"]))
        repo.finish_run(
            tx,
            run_id,
            status=status,
            exit_code=exit_code,
            calls=calls,
            pulled=pulled,
            written=written,
            error=message or None,
            finished_at=finished_at,
        )
