"""One sync cycle, stage by stage (SPEC section 7): sign in (sync.cycle.context), pull
(sync.cycle.pull), derive (sync.cycle.derive) and record (sync.cycle.record) batch by
batch, push (sync.cycle.push), and the report upload.

The engine wires the connectors, the mapping layer and the state store. An error raised
in a stage comes out of it as :class:`StageFailed`, naming the stage (the run row,
``run --json`` and ``status`` show it); the error itself is classified once, here
(:func:`failure_of`), into the exit codes of SPEC section 4.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Literal

from connectors.exceptions import BudgetExhausted, ConnectorError
from mappings.model import LinkProblem
from mappings.rules import Rules
from mappings.validate import IssueCheck
from mappings.writes import Plan
from sync import budget
from sync.config import Config
from sync.cycle.context import CycleContext, open_context
from sync.cycle.derive import BatchedDerive, PlanParts, projects_to_derive, rules_digest
from sync.cycle.ownership import Assignment, everything
from sync.cycle.pull import Changes, Overlay, PullProgress, pull_crm, pull_jira
from sync.cycle.push import PushProgress, PushResult, push
from sync.cycle.record import record_batch, record_end
from sync.exitcodes import ExitCode, exit_for
from sync.remote import Remotes, crm_form, jira_fields
from sync.store import Store, repo

log = logging.getLogger(__name__)

#: Link problems a cycle's result lists at most (``link_problems`` counts them all;
#: ``status`` reads every stored one).
LINK_PROBLEMS_LISTED = 1000


#: The stages of a cycle, as a failure names them (``status`` says "failed in push").
Stage = Literal["sign-in", "pull", "derive", "record", "push", "upload"]
STAGES: tuple[Stage, ...] = ("sign-in", "pull", "derive", "record", "push", "upload")
#: How a budget stop's message names where it stopped.
_DOING: dict[Stage, str] = {"sign-in": "sign-in and metadata reads", "upload": "report upload"}


class StageFailed(Exception):
    """A cycle stage failed: which one, and the error that failed it (the ``cause``, also
    ``__cause__``). The exit code is the cause's (:func:`failure_of`)."""

    def __init__(self, stage: Stage, cause: Exception) -> None:
        super().__init__(f"failed in {stage}: {cause}")
        self.stage: Stage = stage
        self.cause = cause


def failure_of(exc: Exception) -> tuple[str, ExitCode] | None:
    """A cycle's status and exit code for an error that ends it (SPEC section 4); None
    for one that is not the remotes' or the config's (a bug: it propagates)."""
    if not isinstance(exc, ConnectorError):  # not the remotes' or the config's: a bug
        return None
    # The exit code comes from the one error-to-exit map (a spent budget is a clean stop).
    return ("budget" if isinstance(exc, BudgetExhausted) else "failed"), exit_for(exc)


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
    #: What the summary says once: e.g. that Jira bulk edit could not be used, and why.
    notes: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    link_problems: int = 0
    #: Records the pull set aside this cycle (listed up to sync.cycle.pull.LISTED), how many in
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
    #: The stage a failed cycle failed in (:class:`StageFailed`), else None.
    failed_stage: Stage | None = None
    plan: dict[str, Any] | None = None
    plan_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``run --json``)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "failed_stage": self.failed_stage,
            "pulled": self.pulled,
            "planned": self.planned,
            "written": self.written,
            "failed": self.failed,
            "notes": self.notes,
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

    def run(
        self, options: CycleOptions = CycleOptions(), assignment: Assignment | None = None
    ) -> CycleResult:
        """One cycle over ``assignment`` (default: every shard); never raises for remote or
        config trouble (see the result's exit code, and ``failed_stage``)."""
        work = assignment or everything()
        now = self.clock()
        run_id = None
        used: dict[str, int] | None = None
        if not options.dry_run:
            with self.store.transaction() as tx:
                # Runs left "running" by a killed process: the caller holds the run lock
                # (SQLite), or the store's lock shared with other serve jobs (PostgreSQL,
                # whose live holders have a session), so they can be told apart.
                sqlite = self.store.dialect != "postgresql"
                repo.mark_interrupted(
                    tx,
                    repo.dead_runs(
                        tx, lock="mine" if sqlite else "unknown", sessions_end=not sqlite
                    ),
                )
                run_id = repo.start_run(
                    tx, self.worker, dry_run=False, full=options.full, started_at=now
                )
                # The cycle's budget, reserved in the store so cycles of other workers
                # running at once leave it to this one (its end counts what it spent).
                used = {
                    side: repo.reserve_calls(
                        tx, run_id, side, now.date(), per_cycle=cycle, per_day=day
                    )
                    for side, (cycle, day) in budget.limits(self.config).items()
                }
        try:
            return self._run(options, work, now, run_id, used)
        except BaseException:
            if run_id is not None:  # a bug (or a kill): _finish did not replace it
                self._release(run_id)
            raise

    def _release(self, run_id: int) -> None:
        """Drop the run's budget reservation; trouble doing so is logged at debug level, not
        raised: the error on the way out is the one to see (a full disk, a lost database
        say once, with its fix), and marking the run interrupted releases it later."""
        try:
            with self.store.transaction() as tx:
                repo.release_calls(tx, run_id)
        except Exception as exc:
            log.debug("could not release run %d's API budget reservation: %s", run_id, exc)

    def _run(
        self,
        options: CycleOptions,
        work: Assignment,
        now: datetime,
        run_id: int | None,
        used: dict[str, int] | None,
    ) -> CycleResult:
        """The cycle after its start is recorded: ``used``, the calls per side its budget
        reservation found made or reserved today (None for a dry run)."""
        result = CycleResult(run_id=run_id)
        log.info(
            "cycle%s started%s",
            f" (run {run_id})" if run_id is not None else "",
            _mode(options),
        )
        ctx = open_context(self.config, self.store, self.remotes, now, used)
        stopped_by: BudgetExhausted | None = None
        try:
            self._cycle(ctx, options, work, result)
        except StageFailed as failed:
            ended = failure_of(failed.cause)
            if ended is None:
                raise failed.cause from None  # a bug: the CLI turns it into exit 5
            result.status, result.exit_code = ended
            if isinstance(failed.cause, BudgetExhausted):
                stopped_by = failed.cause
            else:
                result.failed_stage = failed.stage
                result.message = str(failed.cause)
        result.calls = ctx.calls()
        crm_side = ctx.crm.side
        self._say_budget(ctx, result, stopped_by, options)
        if not options.dry_run:
            self._finish(result, now)
        log.info(
            "cycle ended: %s (exit %d)%s; calls: jira %s, %s %s",
            result.status,
            int(result.exit_code),
            f" in {result.failed_stage}" if result.failed_stage else "",
            _calls_text(result.calls["jira"]),
            crm_side,
            _calls_text(result.calls[crm_side]),
        )
        return result

    # -- the cycle --------------------------------------------------------------------------

    @contextmanager
    def _stage(self, result: CycleResult, stage: Stage) -> Iterator[None]:
        """Run a stage: the result says what the cycle is doing, and an error raised in it
        comes out as :class:`StageFailed` naming the stage."""
        result.stage = _DOING.get(stage, stage)
        try:
            yield
        except StageFailed:
            raise
        except Exception as exc:
            raise StageFailed(stage, exc) from exc

    def _cycle(
        self, ctx: CycleContext, options: CycleOptions, work: Assignment, result: CycleResult
    ) -> None:
        save = not options.dry_run
        with self._stage(result, "sign-in"):
            # A push-only cycle signs in to the CRM only when it needs it (_after_pull).
            crm = options.only != "push"
            rules = ctx.prepare(refresh=options.full, save=save, crm=crm)
        overlay = Overlay() if options.dry_run else None
        changes = Changes()
        held = list(work.projects) if work.projects is not None else None
        try:
            with self._stage(result, "pull"):
                self._pull(ctx, options, work, rules, changes, overlay, held)
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
        self._after_pull(ctx, options, work, rules, changes, overlay, held, result)
        self._set_aside_status(result)

    def _pull(
        self,
        ctx: CycleContext,
        options: CycleOptions,
        work: Assignment,
        rules: Rules,
        changes: Changes,
        overlay: Overlay | None,
        held: list[str] | None,
    ) -> None:
        config, store, field_ids = ctx.config, ctx.store, ctx.field_ids
        assert field_ids is not None
        if options.only != "push":
            if held != []:
                pull_jira(
                    ctx.jira,
                    store,
                    jira_fields(field_ids),
                    changes,
                    ctx.now,
                    full=options.full,
                    overlay=overlay,
                    projects=held,
                    progress=options.progress,
                    check=IssueCheck(field_ids, field_names(config, field_ids)),
                )
            if work.crm:
                pull_crm(
                    ctx.crm,
                    store,
                    config,
                    changes,
                    ctx.now,
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
        ctx: CycleContext,
        options: CycleOptions,
        work: Assignment,
        rules: Rules,
        changes: Changes,
        overlay: Overlay | None,
        held: list[str] | None,
        result: CycleResult,
    ) -> None:
        config, store, now = ctx.config, ctx.store, ctx.now
        with self._stage(result, "derive"):
            digest = rules_digest(rules)
            projects, engine_state = projects_to_derive(
                store, changes, now.date(), digest, full=options.full or options.dry_run, held=held
            )
        shards = None if work.projects is None else work.shards()
        if not ctx.crm_ready and (
            projects != []  # the derive names the CRM's instance
            or (config.report.upload and work.crm)
            or ctx.crm_writes_waiting(shards)
        ):
            with self._stage(result, "sign-in"):
                ctx.prepare_crm(refresh=options.full, save=not options.dry_run)
        log.info("deriving %s", _projects_text(projects))
        if projects != []:
            self._derive_and_record(ctx, options, rules, projects, engine_state, result, overlay)
        elif options.dry_run:
            result.plan, result.plan_text = {}, ""
        if options.dry_run:
            return
        log.info("planned: %s", counts_text(result.planned))
        # Push even when nothing needed deriving: writes a killed run left queued, parked
        # writes whose backoff is over, and what a budget stop left are due now.
        pushed = PushResult()
        try:
            with self._stage(result, "push"):
                push(
                    store,
                    ctx.jira,
                    ctx.crm,
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
            result.notes = pushed.notes
        log.info("written: %s; parked %d", counts_text(result.written), len(result.failed))
        for note in result.notes:
            log.info("%s", note)
        if config.report.upload and work.crm and not self.should_stop():
            with self._stage(result, "upload"):
                from sync.report.upload import upload_reports  # Jinja2 only when uploads are on

                uploads = upload_reports(config, store, ctx.crm, now, should_stop=self.should_stop)
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
        ctx: CycleContext,
        options: CycleOptions,
        rules: Rules,
        projects: list[str] | None,
        engine_state: dict[str, repo.DeriveState],
        result: CycleResult,
        overlay: Overlay | None,
    ) -> None:
        """Derive (and, unless a dry run, record) ``projects`` through
        :func:`derive_and_record`; a real run then saves the derive state, only after the
        last batch and the flags, so a crash in between derives again what was not
        recorded."""
        config, store, now = ctx.config, ctx.store, ctx.now
        batches = BatchedDerive(
            store,
            rules,
            projects,
            now,
            jira_url=config.jira.url,
            instance_url=ctx.crm.instance_url,
            survey_window_days=config.satisfaction.survey.window_days,
            overlay=overlay,
            form=crm_form(config),
        )
        save = not options.dry_run
        done = derive_and_record(
            batches,
            run_id=result.run_id,
            now=now,
            save=save,
            crm_side=ctx.crm.side,
            stage=partial(self._stage, result),
        )
        result.link_problems = done.link_problems
        result.link_problem_list = done.link_problem_list
        result.conflicts = done.conflicts
        result.planned = done.planned
        if done.plan is not None:
            result.plan = done.plan.as_dict()
            result.plan_text = done.plan.render_text()
            log.info("planned (a dry run: nothing is written): %s", counts_text(result.planned))
            return
        with self._stage(result, "record"), store.transaction() as tx:
            repo.save_derive_states(tx, engine_state, at=now)

    # -- budgets and bookkeeping ------------------------------------------------------------

    def _say_budget(
        self,
        ctx: CycleContext,
        result: CycleResult,
        exc: BudgetExhausted | None,
        options: CycleOptions,
    ) -> None:
        """The result's ``budget`` object, and for a budget stop the message saying which
        budget stopped the cycle, the writes left queued and when the work resumes."""
        if exc is None:
            result.budget = budget.state(ctx.allowances, result.calls)
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
            ctx.allowances,
            result.calls,
            spent=meter.remaining == 0,
            queued=queued,
            stage=result.stage,
            now=ctx.now,
            reason=exc.reason,
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
            stage=result.failed_stage,
        )


@dataclass
class Derivation:
    """What the derive (and record) stage found, for the cycle's result."""

    link_problems: int = 0
    link_problem_list: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    planned: dict[str, int] = field(default_factory=dict)
    #: a dry run's plan: the batches' plans joined (None for a real run, which keeps no
    #: plan in memory: each batch's writes are queued as it is recorded).
    plan: Plan | None = None


@contextmanager
def _no_stage(stage: Stage) -> Iterator[None]:
    yield


def derive_and_record(
    batches: BatchedDerive,
    *,
    run_id: int | None,
    now: datetime,
    save: bool,
    crm_side: str,
    stage: Callable[[Stage], AbstractContextManager[None]] = _no_stage,
) -> Derivation:
    """The one derive path: merge and plan ``batches`` one at a time (memory stays flat as
    the store grows) and, with ``save``, record and queue each batch as it comes, then the
    end (flags, marks of projects no batch covered). Without ``save`` (a dry run) nothing
    is recorded: the batches' plans are joined into the one plan the result shows.

    ``stage`` wraps each step (the engine's: an error names the stage it failed in)."""
    store = batches.store
    parts = None if save else PlanParts()
    item_problems = 0
    table_problems: set[LinkProblem] = set()  # [link.static] problems: every batch repeats them
    listed: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    crm_records = f"{crm_side}_records"  # a counts key scripts read
    planned = {crm_records: 0, "jira_issues": 0}
    derived = iter(batches)
    while True:
        with stage("derive"):
            batch = next(derived, None)
        if batch is None:
            break
        for problem in batch.result.links.problems:
            if problem.item_key is None:
                table_problems.add(problem)
            else:
                item_problems += 1
                if len(listed) < LINK_PROBLEMS_LISTED:
                    listed.append(link_problem_dict(problem))
        planned[crm_records] += len(batch.plan.crm)
        planned["jira_issues"] += len(batch.plan.jira)
        if parts is not None:
            parts.add(batch.plan)
        else:
            conflicts.extend(c.as_dict() for c in batch.plan.conflicts)
            with stage("record"):
                record_batch(store, batch, run_id, now)
        del batch  # before the next one is derived
    table = [link_problem_dict(p) for p in sorted(table_problems, key=_problem_order)]
    done = Derivation(
        link_problems=item_problems + len(table_problems),
        link_problem_list=(table + listed)[:LINK_PROBLEMS_LISTED],
        conflicts=conflicts,
        planned=planned,
    )
    if parts is not None:
        done.plan = parts.plan()
        done.conflicts = [c.as_dict() for c in done.plan.conflicts]
        return done
    with stage("record"):
        record_end(store, batches.end, now)
    return done


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
    stage: str | None = None,
) -> None:
    """Record how a run (a cycle, or a reconcile --apply) ended and the calls it made
    today, in one transaction: the day's budget counts what every run spent, in place of
    what the run reserved. ``stage``: the stage a failed run failed in
    (:class:`StageFailed`)."""
    with store.transaction() as tx:
        repo.release_calls(tx, run_id)
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
            stage=stage,
        )
