"""``jira-crm-sync status``: what the state store says, read without any network call.

Last runs, cursors and the projects waiting for a re-derive, the outbox per side and
state, parked writes with their errors and next retry, API calls used today against
``[limits]``, the sessions holding the store's lock (PostgreSQL: a run, or serve jobs) and
whether a run holds the lock, read without taking it (a status check must never make a
`run` exit 4). The same :class:`Status` renders as rich tables on a terminal, aligned
plain text otherwise, or one JSON document.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from sync import budget as budgets
from sync.config import Config
from sync.store import Store, default_url, repo
from sync.store.db import display_url as _store_url
from sync.store.db import sqlite_path
from sync.store.locks import lock_path, pg_lock_holder, pg_lock_holders

#: The run history names the CRM side as its connector did (``crm.side``); Jira is "jira".
JIRA = "jira"
RUNS = 10
PARKED = 50
#: Link problems listed (``link_problems_total`` counts them all).
LINK_PROBLEMS = 50
NEVER = "-"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else NEVER


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def display_url(url: str | None) -> str:
    """The state store's URL with any password hidden."""
    return _store_url(url or default_url())


@dataclass(frozen=True, slots=True)
class Table:
    """One section of the status: a titled table, or a line saying it is empty."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str
    numeric: frozenset[int] = frozenset()  # right-aligned columns


@dataclass
class Status:
    """Everything ``status`` shows; JSON-ready through :meth:`as_dict`."""

    store: str
    dialect: str
    now: datetime
    exists: bool = True
    runs: list[dict[str, Any]] = field(default_factory=list)
    cursors: list[dict[str, Any]] = field(default_factory=list)
    rederives: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, dict[str, int]] = field(default_factory=dict)
    parked: list[dict[str, Any]] = field(default_factory=list)
    parked_total: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    quarantined_total: int = 0
    budget: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: PostgreSQL: the sessions holding the store's lock (a run, or serve shard jobs)
    holders: list[dict[str, Any]] = field(default_factory=list)
    lock: dict[str, Any] = field(default_factory=dict)
    link_problems: list[dict[str, Any]] = field(default_factory=list)
    link_problems_total: int = 0
    #: The CRM's side name (``crm.side``): the runs table's CRM columns are headed by it,
    #: and it is the CRM's key in each run's ``calls``.
    crm_side: str = "crm"

    @property
    def headline(self) -> str:
        """One line: the last run, or that there has been none."""
        if not self.exists:
            return (
                f"no runs yet: there is no state store at {self.store} "
                "(`jira-crm-sync run` creates it)"
            )
        if not self.runs:
            return "no runs yet: `jira-crm-sync run` does the first sync"
        last = self.runs[0]
        ended = _when_text(last["finished_at"] or last["started_at"])
        exit_code = NEVER if last["exit_code"] is None else last["exit_code"]
        stage = f" in {last['failed_stage']}" if last["failed_stage"] else ""
        return f"last run #{last['id']}: {last['status']}{stage} (exit {exit_code}) at {ended}"

    def as_dict(self) -> dict[str, Any]:
        """The ``status --json`` document."""
        return {
            "store": self.store,
            "dialect": self.dialect,
            "now": _iso(self.now),
            "exists": self.exists,
            "summary": self.headline,
            "crm_side": self.crm_side,
            "lock": self.lock,
            "runs": self.runs,
            "cursors": self.cursors,
            "pending_rederives": self.rederives,
            "outbox": self.outbox,
            "parked": self.parked,
            "parked_total": self.parked_total,
            "quarantined": self.quarantined,
            "quarantined_total": self.quarantined_total,
            "budget": self.budget,
            "holders": self.holders,
            "link_problems": self.link_problems,
            "link_problems_total": self.link_problems_total,
        }

    def tables(self) -> list[Table]:
        """The sections, in the order people read them."""
        runs = Table(
            "Last runs",
            (
                *("run", "started", "took", "status", "exit", "pulled"),
                *(f"wrote {self.crm_side}/jira", "failed", f"calls jira/{self.crm_side}"),
                "note",
            ),
            [_run_row(run, self.crm_side) for run in self.runs],
            "no runs yet",
            frozenset({0, 4, 5, 6, 7, 8}),
        )
        budget = Table(
            "API calls today (UTC) against [limits]",
            ("side", "used", "reserved", "per day", "left today", "per cycle", "state"),
            [
                (
                    side,
                    *(
                        str(b[k])
                        for k in ("used", "reserved", "per_day", "left", "per_cycle", "state")
                    ),
                )
                for side, b in self.budget.items()
            ],
            "no limits configured",
            frozenset({1, 2, 3, 4, 5}),
        )
        queue = Table(
            "Writes in the outbox",
            ("side", "pending", "in flight", "parked", "not retried", "done"),
            [
                (
                    side,
                    *(str(n[k]) for k in ("pending", "inflight", "parked", "exhausted", "done")),
                )
                for side, n in self.outbox.items()
            ],
            "no writes queued yet",
            frozenset({1, 2, 3, 4, 5}),
        )
        parked_title = "Parked writes"
        if self.parked_total > len(self.parked):
            parked_title += f" (the first {len(self.parked)} of {self.parked_total})"
        parked = Table(
            parked_title,
            ("side", "record", "op", "attempts", "next retry", "error"),
            [
                (
                    p["side"],
                    p["record"],
                    p["op"],
                    str(p["attempts"]),
                    _when_text(p["next_attempt_at"]) if p["retried"] else "not retried",
                    p["error"] or "",
                )
                for p in self.parked
            ],
            "no parked writes",
            frozenset({3}),
        )
        aside_title = "Records set aside (not stored: read again next cycle, then less often)"
        if self.quarantined_total > len(self.quarantined):
            aside_title += f" (the first {len(self.quarantined)} of {self.quarantined_total})"
        aside = Table(
            aside_title,
            ("side", "kind", "record", "times", "first seen", "last seen", "why"),
            [
                (
                    q["side"],
                    q["kind"],
                    q["record"],
                    str(q["attempts"]),
                    _when_text(q["first_seen_at"]),
                    _when_text(q["last_seen_at"]),
                    q["reason"],
                )
                for q in self.quarantined
            ],
            "none: every record pulled could be read",
            frozenset({3}),
        )
        cursors = Table(
            "Cursors",
            ("source", "object", "position", "saved"),
            [
                (c["source"], c["object"], c["position"], _when_text(c["updated_at"]))
                for c in self.cursors
            ],
            "no cursors yet (the first run reads everything)",
        )
        rederives = Table(
            "Projects waiting for a re-derive",
            ("project", "marks", "since"),
            [(r["project"], str(r["marks"]), _when_text(r["since"])) for r in self.rederives],
            "none: every change pulled has been merged",
            frozenset({1}),
        )
        tables = [runs, parked, aside, self._link_problems_table(), queue, budget, cursors]
        tables.append(rederives)
        if self.dialect == "postgresql":
            tables.append(
                Table(
                    "Holding the store's lock (a run, or serve jobs in flight)",
                    ("session", "backend pid", "since"),
                    [
                        (h["session"] or NEVER, str(h["pid"]), _when_text(h["since"]))
                        for h in self.holders
                    ],
                    "nobody: no run and no serve job is in flight",
                )
            )
        return tables

    def _link_problems_table(self) -> Table:
        title = "Link problems (values that could not be used)"
        if self.link_problems_total > len(self.link_problems):
            title += f" (the first {len(self.link_problems)} of {self.link_problems_total})"
        return Table(
            title,
            ("project", "item", "reason", "fell back to"),
            [
                (p["project"], p["item"], p["reason"], p["linked_by"] or "unlinked")
                for p in self.link_problems
            ],
            "none: no work item has a bad link value or was left unlinked",
        )

    def lock_line(self) -> str:
        """Whether a run holds the store now."""
        lock = self.lock
        if lock.get("held") is None:
            return f"run lock: cannot tell ({lock.get('detail', 'unknown')})"
        if lock["held"]:
            return f"run lock: held by {lock.get('holder') or 'an unknown process'}"
        return "run lock: free"


def _when_text(iso: str | None) -> str:
    return _when(datetime.fromisoformat(iso)) if iso else NEVER


def _sides(calls: dict[str, Any]) -> tuple[str, str]:
    """Jira and the CRM side a run's calls name (Jira first)."""
    return JIRA, next((side for side in calls if side != JIRA), "crm")


def _crm_written(written: dict[str, Any]) -> int:
    """The CRM records a run wrote (counted as ``<crm side>_records``)."""
    return sum(int(n) for key, n in written.items() if key.endswith("_records"))


def _run_row(run: dict[str, Any], crm_side: str) -> tuple[str, ...]:
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"]) if run["finished_at"] else None
    took = f"{(finished - started).total_seconds():.1f}s" if finished else NEVER
    notes = [flag for flag in ("dry run", "full") if run[flag.replace(" ", "_")]]
    if run["error"]:
        stage = run["failed_stage"]
        notes.append(f"failed in {stage}: {run['error']}" if stage else run["error"])
    return (
        str(run["id"]),
        _when(started),
        took,
        run["status"],
        NEVER if run["exit_code"] is None else str(run["exit_code"]),
        str(run["pulled_total"]),
        f"{_crm_written(run['written'])}/{run['written'].get('jira_issues', 0)}",
        str(run["failed"]),
        "/".join(str(run["calls"].get(side, NEVER)) for side in (JIRA, crm_side)),
        "; ".join(notes),
    )


# --- reading the store -------------------------------------------------------------------------


def missing_state_file(url: str | None) -> Path | None:
    """The SQLite state file when it does not exist yet (status must not create it)."""
    path = sqlite_path(url or default_url())
    return path if path is not None and not path.exists() else None


def empty(config: Config, now: datetime | None = None) -> Status:
    """The status of a state store that does not exist yet."""
    status = Status(display_url(config.state.url), "sqlite", now or datetime.now(UTC), exists=False)
    status.crm_side = config.crm.side
    status.budget = _budget(config, {}, status.now)
    status.lock = {"held": False, "holder": None}
    return status


def collect(
    store: Store, config: Config, *, runs: int = RUNS, now: datetime | None = None
) -> Status:
    """Read the status from an opened store (no network, no lock taken)."""
    now = now or datetime.now(UTC)
    status = Status(display_url(config.state.url), store.dialect, now, crm_side=config.crm.side)
    lock_before = lock_state(store)
    with store.read() as conn:
        status.runs = [_run(record) for record in repo.last_runs(conn, runs)]
        cursors = [_cursor(c) for c in repo.all_cursors(conn)]
        cursors += [_derive_state(s) for s in repo.all_derive_states(conn)]
        status.rederives = [_rederive(p) for p in repo.waiting_projects(conn)]
        status.outbox = repo.counts_by_target(conn)
        status.parked = [_parked(entry) for entry in repo.parked(conn, PARKED)]
        status.parked_total = sum(n["parked"] for n in status.outbox.values())
        status.quarantined = [
            {
                "side": q.side,
                "kind": q.kind,
                "record": q.record_id,
                "reason": q.reason,
                "attempts": q.attempts,
                "first_seen_at": _iso(q.first_seen_at),
                "last_seen_at": _iso(q.last_seen_at),
            }
            for q in repo.iter_quarantined(conn, PARKED)
        ]
        status.quarantined_total = repo.count_quarantined(conn)
        day = now.date()
        sides = budgets.limits(config)
        reserved = {side: repo.reserved_today(conn, side, day) for side in sides}
        status.budget = _budget(config, repo.calls_on(conn, day), now, reserved)
        status.link_problems = [
            _link_problem(p) for p in repo.iter_link_problems(conn, LINK_PROBLEMS)
        ]
        status.link_problems_total = repo.count_link_problems(conn)
        if store.dialect == "postgresql":
            status.holders = [
                {"session": h.application_name, "pid": h.pid, "since": _iso(h.backend_start)}
                for h in pg_lock_holders(conn)
            ]
    status.cursors = sorted(cursors, key=lambda c: (c["source"], c["object"]))
    status.lock = lock_state(store)
    _show_interrupted(store, status.runs, lock_before, status.lock)
    return status


def _show_interrupted(
    store: Store, runs: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Show runs recorded as running whose process is gone as interrupted (the next cycle
    records them so; status writes nothing): their pid on this host is gone, the SQLite run
    lock was free (or held by another process) before and after the runs were read, or,
    on PostgreSQL, their worker has no session holding the store's lock."""
    if not any(run["status"] == "running" for run in runs):
        return
    seen: repo.LockSeen = "unknown"
    if store.dialect != "postgresql":
        if before.get("held") is False and after.get("held") is False:
            seen = "free"
        elif before.get("held") and after.get("held") and before.get("pid") == after.get("pid"):
            seen = int(after["pid"])
    with store.read() as conn:
        dead = repo.dead_runs(conn, lock=seen, sessions_end=store.dialect == "postgresql")
    for run in runs:
        why = dead.get(run["id"])
        if why is not None and run["status"] == "running":
            run["status"], run["error"] = "interrupted", why


def _run(record: repo.RunRecord) -> dict[str, Any]:
    written = dict(record.written or {})
    failed = int(written.pop("failed", 0) or 0)
    calls = record.calls or {}
    return {
        "id": record.id,
        "worker": record.worker,
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "status": record.status,
        "exit_code": record.exit_code,
        "dry_run": record.dry_run,
        "full": record.full,
        "pulled": record.pulled or {},
        "pulled_total": sum(int(n) for n in (record.pulled or {}).values()),
        "written": written,
        "failed": failed,
        "calls": {
            side: int(calls[side]["total"])
            for side in _sides(calls)
            if isinstance(calls.get(side), dict) and "total" in calls[side]
        },
        "error": record.error,
        #: the stage a failed cycle failed in (pull, derive, record, push ...), else None.
        "failed_stage": record.failed_stage,
    }


def _link_problem(record: repo.LinkProblemRecord) -> dict[str, Any]:
    return {
        "project": record.project_key,
        "item": record.item_key,
        "reason": record.reason,
        "linked_by": record.linked_by,
        "updated_at": _iso(record.updated_at),
    }


def _position(value: Any) -> str:
    """A cursor's value in a few words."""
    if isinstance(value, dict):
        if "updated_ms" in value:
            stamp = datetime.fromtimestamp(int(value["updated_ms"]) / 1000, UTC)
            return f"updated {_when(stamp)}"
        if "at" in value:
            at = _when(datetime.fromisoformat(str(value["at"]).replace("Z", "+00:00")))
            return f"{at}" + (f" after {value['last_id']}" if value.get("last_id") else "")
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _cursor(cursor: repo.CursorRecord) -> dict[str, Any]:
    return {
        "source": cursor.source,
        "object": cursor.object,
        "position": _position(cursor.value),
        "value": cursor.value,
        "updated_at": _iso(cursor.updated_at),
    }


def _derive_state(state: repo.DeriveStateRecord) -> dict[str, Any]:
    """A derive state, listed with the cursors as ``status`` always showed it: source
    ``engine``, object ``derived:<scope>``."""
    return _cursor(
        repo.CursorRecord(
            "engine",
            f"derived:{state.scope}",
            {"day": state.day.isoformat(), "rules": state.rules_digest},
            state.updated_at,
        )
    )


def _rederive(project: repo.DirtyProject) -> dict[str, Any]:
    return {"project": project.project_key, "marks": project.marks, "since": _iso(project.since)}


def _parked(entry: repo.OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "side": entry.target,
        "record": entry.record_key,
        "op": entry.op,
        "attempts": entry.attempts,
        "retried": entry.attempts < repo.MAX_ATTEMPTS,
        "next_attempt_at": _iso(entry.next_attempt_at),
        "error": entry.last_error,
        "since": _iso(entry.created_at),
    }


def _budget(
    config: Config,
    used: dict[str, int],
    now: datetime,
    reserved: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each side's calls today against [limits]: ``used`` made, ``reserved`` held by the
    cycles running now (other workers, other jobs: what they may still make), both out of
    what is left, as the next cycle's allowance counts them."""
    held = reserved or {}
    counted = {side: used.get(side, 0) + held.get(side, 0) for side in {*used, *held}}
    out: dict[str, dict[str, Any]] = {}
    for side, allowance in budgets.allowances(config, counted).items():
        left = allowance.left_today
        resumes = None
        if left == 0:  # cycles stop at once until the day's budget resets
            resumes = budgets.next_midnight(now)
            state = f"spent: cycles resume at {_when(resumes)}"
        elif allowance.binding == "per_day":
            state = f"low: the next cycle may make {left} calls"
        else:
            state = "ok"
        out[side] = {
            "used": used.get(side, 0),
            "reserved": held.get(side, 0),
            "per_day": allowance.per_day,
            "left": left,
            "per_cycle": allowance.per_cycle,
            "state": state,
            "resumes_at": _iso(resumes),
        }
    return out


# --- the run lock, read without taking it ------------------------------------------------------


def lock_state(store: Store) -> dict[str, Any]:
    """``{"held": True/False/None, "holder": ..., "detail": ...}`` (None: cannot tell)."""
    if store.dialect == "postgresql":
        return _pg_lock_state(store)
    path = store.path
    if path is None:
        return {"held": None, "holder": None, "detail": "an in-memory store has no lock file"}
    return _file_lock_state(lock_path(path))


def _file_lock_state(path: Path) -> dict[str, Any]:
    """Whether some process holds ``flock`` on the lock file, from ``/proc/locks`` (Linux):
    flock has no way to test a lock without taking it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {"held": False, "holder": None}
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return {"held": None, "holder": None, "detail": "no /proc/locks on this system"}
    pids = []
    for line in table.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:131 0 EOF"; waiters have a "->" after the id.
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            device = os.makedev(int(major, 16), int(minor, 16))
            if int(inode) == stat.st_ino and device == stat.st_dev:
                pids.append(int(parts[4]))
        except ValueError:
            continue
    if not pids:
        return {"held": False, "holder": None}
    return {"held": True, "holder": _holder(path) or f"pid {pids[0]}", "pid": pids[0]}


def _holder(path: Path) -> str | None:
    """What the holder wrote into the lock file: its name, pid, host and since when."""
    try:
        info = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info:
        return None
    parts = [str(info.get("holder") or "a run"), f"pid {info.get('pid', '?')}"]
    if info.get("host"):
        parts.append(f"on {info['host']}")
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return " ".join(parts)


def _pg_lock_state(store: Store) -> dict[str, Any]:
    """The advisory lock, from ``pg_locks`` (looking does not take it)."""
    with store.read() as conn:
        holder = pg_lock_holder(conn)
    if holder is None:
        return {"held": False, "holder": None}
    since = f" since {_when(holder.backend_start)}" if holder.backend_start else ""
    name = holder.application_name or "an unnamed session"
    return {"held": True, "holder": f"{name} (backend pid {holder.pid}){since}", "pid": holder.pid}


# --- rendering ---------------------------------------------------------------------------------


def render_text(status: Status) -> str:
    """Aligned plain text, for pipes, files and cron mail."""
    lines = [f"state store: {status.store}", status.headline, status.lock_line()]
    if status.exists:
        for table in status.tables():
            lines.append("")
            if not table.rows:
                lines.append(f"{table.title}: {table.empty}")
                continue
            lines.append(f"{table.title}:")
            widths = [
                max(len(cell) for cell in column)
                for column in zip(table.headers, *table.rows, strict=True)
            ]
            for row in (table.headers, *table.rows):
                cells = [
                    cell.rjust(width) if i in table.numeric else cell.ljust(width)
                    for i, (cell, width) in enumerate(zip(row, widths, strict=True))
                ]
                lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines) + "\n"


def render_rich(status: Status, console: Console) -> None:
    """Rich tables, for a person at a terminal."""
    console.print(f"[bold]state store[/bold] {escape(status.store)}", highlight=False)
    console.print(Text(status.headline))
    console.print(Text(status.lock_line()))
    if not status.exists:
        return
    for table in status.tables():
        console.print()
        if not table.rows:
            console.print(f"[bold]{escape(table.title)}[/bold]: {escape(table.empty)}")
            continue
        shown = RichTable(
            title=Text(table.title),
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            collapse_padding=True,
        )
        last = len(table.headers) - 1
        for i, header in enumerate(table.headers):
            # On a narrow terminal headers wrap and the last column (errors, notes) folds;
            # figures and times are never cut.
            widest = max(len(row[i]) for row in table.rows)
            shown.add_column(
                header,
                justify="right" if i in table.numeric else "left",
                min_width=None if i == last else widest,
                overflow="fold",
            )
        for row in table.rows:
            shown.add_row(*(Text(cell) for cell in row))
        console.print(shown)
