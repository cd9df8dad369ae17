"""The ``jira-crm-sync`` command line: thin commands over sync/ and the sandbox."""

from __future__ import annotations

import json
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from sync.exitcodes import ExitCode

db_app = typer.Typer(help="State-store maintenance.", no_args_is_help=True)

app = typer.Typer(
    name="jira-crm-sync",
    help="Keeps Jira work and CRM customers in step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class LogFormat(StrEnum):
    """How log lines are written to stderr."""

    text = "text"
    json = "json"


class JiraMode(StrEnum):
    """Which Jira deployment the sandbox emulates."""

    cloud = "cloud"
    server = "server"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


def _setup_logging(log_format: LogFormat, verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING)
    )
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


app.add_typer(db_app, name="db")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (default ./jira-crm-sync.toml, then $JIRA_CRM_SYNC_CONFIG).",
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines as text or JSON (journald).")
    ] = LogFormat.text,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (repeatable).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    """Options every command takes."""
    _setup_logging(log_format, verbose, quiet)
    ctx.obj = {"config": config}


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    jira_port: Annotated[int, typer.Option(help="Jira port (0 picks a free one).")] = 0,
    salesforce_port: Annotated[int, typer.Option(help="Salesforce port (0: free one).")] = 0,
    issues: Annotated[int, typer.Option(min=0, help="Jira issues in the world.")] = 500,
    accounts: Annotated[int, typer.Option(min=0, help="Salesforce accounts.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 1,
    latency_ms: Annotated[int, typer.Option(min=0, help="Delay added to every call.")] = 0,
    jira_mode: Annotated[JiraMode, typer.Option(help="Emulate Jira Cloud or Server.")] = (
        JiraMode.cloud
    ),
    write_config: Annotated[
        Path | None, typer.Option(help="Also write a config file pointing at this sandbox.")
    ] = None,
) -> None:
    """Serve an emulated Jira and Salesforce over HTTPS on loopback until SIGINT/SIGTERM."""
    from connectors.sandbox.config_file import write_sandbox_config
    from connectors.sandbox.stack import Sandbox

    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        _fail(
            ExitCode.USAGE,
            f"--host {host} is not a loopback address; the sandbox "
            "only serves on loopback (use 127.0.0.1).",
        )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    box = Sandbox(
        issues=issues,
        accounts=accounts,
        seed=seed,
        jira_mode=jira_mode.value,
        latency_ms=latency_ms,
    )
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-sandbox-") as tls_dir:
        try:
            box.serve(
                Path(tls_dir), host=host, jira_port=jira_port, salesforce_port=salesforce_port
            )
        except OSError as exc:
            _fail(
                ExitCode.USAGE,
                f"cannot listen on {host}: {exc.strerror}; choose other "
                "ports with --jira-port/--salesforce-port, or 0 for free ones.",
            )
        try:
            if write_config is not None:
                write_sandbox_config(box, write_config)
            sys.stdout.write(json.dumps(box.ready_document()) + "\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        finally:
            box.stop()


class Only(StrEnum):
    """Which half of a cycle ``run --only`` does."""

    pull = "pull"
    push = "push"


@app.command()
def run(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan of writes; write nothing anywhere.")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="Ignore cursors: read everything.")] = False,
    only: Annotated[Only | None, typer.Option("--only", help="Only pull, or only push.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """One sync cycle (pull, merge, push), then exit: for cron and systemd timers."""
    from sync.engine import CycleOptions
    from sync.runner import one_cycle
    from sync.store import LockHeld

    config = _config(ctx)
    store = _store(config)
    options = CycleOptions(dry_run=dry_run, full=full, only=only.value if only else None)
    try:
        result = _guarded(lambda: one_cycle(config, store, options), expected=(LockHeld,))
    except LockHeld as exc:
        _fail(ExitCode.LOCKED, str(exc))
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False, default=str) + "\n")
    else:
        _print_cycle(result, dry_run)
    if result.exit_code != ExitCode.OK:
        _fail(result.exit_code, result.message)


def _print_cycle(result: Any, dry_run: bool) -> None:
    def join(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"

    typer.echo(f"pulled: {join(result.pulled)}")
    typer.echo(f"planned: {join(result.planned)}")
    if dry_run:
        typer.echo("dry run: nothing was written, here or remotely; the plan:")
        for line in result.plan_text.splitlines():
            typer.echo(f"  {line}")
        return
    typer.echo(f"written: {join(result.written)}")
    for failure in result.failed:
        typer.echo(f"parked: {failure['side']} {failure['record']}: {failure['error']}")
    for conflict in result.conflicts:
        typer.echo(f"conflict: {conflict}")


@app.command()
def serve(
    ctx: typer.Context,
    cycles: Annotated[
        int | None, typer.Option(help="Stop after this many cycles (default: until SIGTERM).")
    ] = None,
) -> None:
    """Run cycles on [schedule] until SIGTERM; /healthz and /metrics on [serve] listen."""
    from sync.schedule import Schedule, ScheduleError
    from sync.serve import serve_forever

    config = _config(ctx)
    try:
        schedule = Schedule.parse(config.schedule.every)
    except ScheduleError as exc:
        _fail(ExitCode.USAGE, str(exc))
    store = _store(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("jira_crm_sync").info("signal %s: finishing the write in flight", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(server: Any) -> None:
        typer.echo(
            f"serving /healthz and /metrics on {config.serve.listen}; cycles every {schedule.text}",
            err=True,
        )

    try:
        _guarded(
            lambda: serve_forever(config, store, schedule, stop, max_cycles=cycles, on_ready=ready)
        )
    except OSError as exc:
        _fail(
            ExitCode.USAGE,
            f"cannot listen on {config.serve.listen} ({exc.strerror}); change [serve] listen",
        )
    finally:
        store.close()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply state-store migrations (also done automatically on an empty database)."""
    from sync.store import current_revision, head_revision, upgrade
    from sync.store.db import create_engine

    config = _config(ctx)
    engine = create_engine(config.state.url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        typer.echo(
            f"state store at revision {current_revision(engine)} "
            f"(was {before or 'empty'}; newest {head_revision()})"
        )
    finally:
        engine.dispose()


def _config(ctx: typer.Context) -> Any:
    from sync.config import ConfigFileError, find_config, load_config

    try:
        return load_config(find_config(ctx.obj["config"]))
    except ConfigFileError as exc:
        typer.echo(str(exc), err=True)
        _fail(ExitCode.USAGE, "fix the config problems listed above, then run again")


def _store(config: Any) -> Any:
    from sync.store import StoreError, open_store

    try:
        return open_store(config.state.url)
    except StoreError as exc:
        _fail(ExitCode.USAGE, str(exc))


def _guarded(work: Callable[[], Any], expected: tuple[type[Exception], ...] = ()) -> Any:
    """Run ``work``; an unexpected exception becomes exit 5 with one line (traceback at -v).
    Exceptions in ``expected`` are the caller's to turn into their own exit code."""
    passthrough: tuple[type[BaseException], ...] = (typer.Exit, *expected)
    try:
        return work()
    except passthrough:
        raise
    except Exception as exc:  # the one place that turns a bug into exit code 5
        logging.getLogger("jira_crm_sync").debug("internal error", exc_info=True)
        _fail(
            ExitCode.INTERNAL,
            f"internal error ({type(exc).__name__}: {exc}); run again "
            "with -vv for the traceback and report it",
        )


def _fail(code: ExitCode, message: str) -> NoReturn:
    typer.echo(f"jira-crm-sync: {message}", err=True)
    raise typer.Exit(int(code))


def main() -> None:
    """Console-script entry point."""
    app()
