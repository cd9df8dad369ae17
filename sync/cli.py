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


class SandboxLocale(StrEnum):
    """The language of the sandbox's Jira site (its field names)."""

    en = "en"
    zh = "zh"
    de = "de"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        cycle = getattr(record, "cycle", None)  # serve's line per cycle, for log queries
        if isinstance(cycle, dict):
            document["cycle"] = cycle
        return json.dumps(document, ensure_ascii=False, default=str)


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
    ctx.obj = {"config": config, "quiet": quiet, "log_format": log_format, "verbose": verbose}


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
    locale: Annotated[
        SandboxLocale, typer.Option(help="The Jira site's language: its field names.")
    ] = SandboxLocale.en,
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
        locale=locale.value,
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
    from sync.progress import pull_bars
    from sync.runner import one_cycle
    from sync.store import LockHeld

    config = _config(ctx)
    store = _reading_store(config) if dry_run else _store(config)
    try:
        with pull_bars(_bar_stream(ctx)) as progress:
            options = CycleOptions(
                dry_run=dry_run,
                full=full,
                only=only.value if only else None,
                progress=progress,
                push_progress=progress.pushed if progress is not None else None,
            )
            result = _guarded(
                lambda: one_cycle(config, store, options), expected=(LockHeld,), store=store
            )
    except LockHeld as exc:
        _fail(ExitCode.LOCKED, str(exc))
    finally:
        store.close()
    if as_json:
        _print_json(result.as_dict())
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
        _print_budget_stop(result)
        _print_link_problems(result, "`jira-crm-sync run --dry-run --json` lists them")
        typer.echo("dry run: nothing was written, here or remotely; the plan:")
        for line in result.plan_text.splitlines():
            typer.echo(f"  - {line}")
        _print_set_aside(result)
        return
    typer.echo(f"written: {join(result.written)}")
    _print_budget_stop(result)
    for failure in result.failed:
        typer.echo(f"parked: {failure['side']} {failure['record']}: {failure['error']}")
    for conflict in result.conflicts:
        typer.echo(f"conflict: {conflict}")
    _print_set_aside(result)
    _print_link_problems(result, "`jira-crm-sync status` lists them")


#: Set-aside records a cycle's text output lists (status lists more).
SET_ASIDE_SHOWN = 10


def _print_set_aside(result: Any) -> None:
    """The records a cycle could not read and set aside, a line each (the first few)."""
    for record in result.quarantined[:SET_ASIDE_SHOWN]:
        typer.echo(
            f"set aside: {record['side']} {record['kind']} {record['record']}: {record['reason']}"
        )
    more = result.quarantined_count - min(len(result.quarantined), SET_ASIDE_SHOWN)
    if more > 0:
        typer.echo(f"set aside: {more} more; `jira-crm-sync status` lists them")


def _print_budget_stop(result: Any) -> None:
    """Which API budget stopped the cycle, the writes left and when it resumes: the run
    exits 0 (the next cycle goes on), so this line is where a person learns of it."""
    if result.status == "budget":
        typer.echo(f"budget: {result.message}")


#: Link problems ``run`` prints (``--json`` and ``status`` list more).
LINK_PROBLEMS_SHOWN = 10


def _print_link_problems(result: Any, more: str) -> None:
    """Work items whose link value could not be used: each with the reason (which names
    the value) and the rule it fell back to, the first few of them."""
    if not result.link_problems:
        return
    typer.echo(
        f"link problems: {result.link_problems} (link values that could not be used; "
        "fix them in Jira or in [link])"
    )
    shown = result.link_problem_list[:LINK_PROBLEMS_SHOWN]
    for problem in shown:
        if problem["item"] is None:  # an entry of the table itself, for the whole project
            typer.echo(f"  [link.static] {problem['project']}: {problem['reason']}")
            continue
        fallback = f"linked by {problem['linked_by']}" if problem["linked_by"] else "left unlinked"
        typer.echo(f"  {problem['item']} ({problem['project']}): {problem['reason']}; {fallback}")
    if result.link_problems > len(shown):
        typer.echo(f"  ... and {result.link_problems - len(shown)} more; {more}")


@app.command()
def serve(
    ctx: typer.Context,
    cycles: Annotated[
        int | None, typer.Option(help="Stop after this many cycles (default: until SIGTERM).")
    ] = None,
) -> None:
    """Run cycles on [schedule] until SIGTERM; /healthz and /metrics on [serve] listen."""
    from sync.schedule import Schedule, ScheduleError
    from sync.serve import ListenError, serve_forever

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

    _serve_logging(ctx)

    def ready(server: Any) -> None:
        logging.getLogger("sync.serve").info(
            "serving /healthz and /metrics on %s; cycles every %s",
            config.serve.listen,
            schedule.text,
        )

    try:
        _guarded(
            lambda: serve_forever(config, store, schedule, stop, max_cycles=cycles, on_ready=ready),
            expected=(ListenError,),
        )
    except ListenError as exc:  # the port is taken, or not ours to bind: a config problem
        _fail(ExitCode.USAGE, str(exc))
    finally:
        store.close()


def _serve_logging(ctx: typer.Context) -> None:
    """`serve` logs its start-up and one line per cycle at INFO without -v (a service's
    journal is its only output); -q still leaves only errors, -v/-vv raise the level."""
    options = ctx.obj or {}
    if options.get("quiet") or options.get("verbose"):
        return
    for name in ("sync.serve", "jira_crm_sync"):  # ours only: libraries stay at WARNING
        logging.getLogger(name).setLevel(logging.INFO)


@app.command("status")
def status_command(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="How many recent runs to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Last runs, cursors, pending and parked writes, API budget used: from the state store
    only, no network."""
    from sync import status as view

    config = _config(ctx)
    if view.missing_state_file(config.state.url) is not None:
        report = view.empty(config)  # a status check does not create the state file
    else:
        store = _store(config)
        try:
            report = _guarded(lambda: view.collect(store, config, runs=runs))
        finally:
            store.close()
    _show(report, view, as_json)


@app.command("demo")
def demo_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the HTML report.")
    ] = Path("jira-crm-sync-demo-report.html"),
    keep_state: Annotated[
        Path | None,
        typer.Option(help="Keep the demo's config and state store in this directory."),
    ] = None,
) -> None:
    """The sandbox, a full sync, some changes, an incremental sync and an HTML report;
    needs no account anywhere and leaves nothing running."""
    from sync.demo import Demo, DemoError

    try:
        _guarded(lambda: Demo(typer.echo, output, keep_state).run(), expected=(DemoError,))
    except DemoError as exc:
        _fail(ExitCode(exc.exit_code), str(exc))


@app.command("init")
def init_command(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write (default --config, else ./jira-crm-sync.toml)."
        ),
    ] = None,
    jira_url: Annotated[str | None, typer.Option(help="Jira site URL.")] = None,
    jira_auth: Annotated[
        str | None,
        typer.Option(help="cloud (email + API token) or server (personal access token)."),
    ] = None,
    jira_email: Annotated[
        str | None, typer.Option(help="Atlassian account e-mail (cloud).")
    ] = None,
    projects: Annotated[
        str | None, typer.Option(help="Jira project keys, comma-separated.")
    ] = None,
    salesforce_auth: Annotated[
        str | None,
        typer.Option(help="password, oauth_password, jwt, client_credentials or session."),
    ] = None,
    salesforce_login_url: Annotated[
        str | None, typer.Option(help="Login or My Domain URL.")
    ] = None,
    salesforce_instance_url: Annotated[
        str | None, typer.Option(help="Instance URL (session auth).")
    ] = None,
    salesforce_username: Annotated[str | None, typer.Option(help="Salesforce username.")] = None,
    salesforce_private_key_file: Annotated[
        str | None, typer.Option(help="JWT private key file (jwt auth).")
    ] = None,
    state_url: Annotated[
        str | None, typer.Option(help="State store URL (default: SQLite in the state dir).")
    ] = None,
    jira_ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the CAs Jira's certificate needs.")
    ] = None,
    salesforce_ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the CAs Salesforce's certificate needs.")
    ] = None,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Sign in (secrets from the environment) and propose projects, fields and "
            "objects from what the sites hold.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    prompt: Annotated[
        bool | None,
        typer.Option(
            "--prompt/--no-input",
            help="Ask for values not given as flags (default: only when stdin is a terminal).",
        ),
    ] = None,
) -> None:
    """Write a commented config from config.example.toml; never writes a secret into it."""
    import os
    from dataclasses import replace

    from connectors.exceptions import ConfigError, ConnectorError
    from sync.config import DEFAULT_CONFIG_NAME
    from sync.init_config import (
        InitError,
        collect,
        discover_sites,
        example_text,
        render,
        secret_variables,
        sign_in_config,
        write_config,
    )

    path = output or ctx.obj["config"] or Path(DEFAULT_CONFIG_NAME)
    given = {
        "jira-url": jira_url,
        "jira-auth": jira_auth,
        "jira-email": jira_email,
        "projects": projects,
        "salesforce-auth": salesforce_auth,
        "salesforce-login-url": salesforce_login_url,
        "salesforce-instance-url": salesforce_instance_url,
        "salesforce-username": salesforce_username,
        "salesforce-private-key-file": salesforce_private_key_file,
        "state-url": state_url,
        "jira-ca-bundle": jira_ca_bundle,
        "salesforce-ca-bundle": salesforce_ca_bundle,
    }
    interactive = sys.stdin.isatty() if prompt is None else prompt

    def ask(question: str, default: str | None) -> str:
        return str(typer.prompt(question, default=default, err=True))

    def tell(message: str) -> None:
        typer.echo(message, err=True)

    try:
        if path.exists() and not force:  # before any question is asked
            raise InitError(
                f"{path} exists; pass --force to overwrite it, or --output PATH to write elsewhere"
            )
        asker = ask if interactive else None
        answers = collect(given, asker, tell, discover=discover)
        found = None
        if discover:
            config = sign_in_config(answers, os.environ)
            try:
                chosen, found = _guarded(
                    lambda: discover_sites(config, given, asker, tell),
                    expected=(ConnectorError, InitError),
                )
            except ConnectorError as exc:
                code = ExitCode.USAGE if isinstance(exc, ConfigError) else ExitCode.REMOTE
                _fail(code, f"init --discover: {exc}; nothing was written")
            answers = replace(answers, projects=chosen)
        variables = secret_variables(answers)
        text = render(example_text(), answers, found)
        _guarded(lambda: write_config(path, text, variables, force))
    except InitError as exc:
        _fail(ExitCode.USAGE, str(exc))
    if found is not None:
        typer.echo("Discovered (each choice is also a comment in the file):")
        for line in found.lines():
            typer.echo(f"  - {line}")
    typer.echo(f"wrote {path} (readable by you only); it holds no secret.")
    typer.echo("Set these in the environment of every run (or use *_file keys instead):")
    for name, what in variables:
        typer.echo(f"  {name:<28} {what}")
    if answers.salesforce_private_key_file:
        typer.echo(
            f"and put the JWT private key at {answers.salesforce_private_key_file} (chmod 600)."
        )
    typer.echo(f"Then run: jira-crm-sync --config {path} check --online")


@app.command("check")
def check_command(
    ctx: typer.Context,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also sign in to both sides; check permissions, fields, objects, budgets.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Validate the config (every problem names its key and the fix); one line per check."""
    from sync.check import run_checks

    report = _guarded(lambda: run_checks(ctx.obj["config"], online=online))
    if as_json:
        _print_json(report.as_dict())
    else:
        for item in report.checks:
            typer.echo(item.line())
    if report.exit_code != ExitCode.OK:
        _fail(report.exit_code, report.summary())


@app.command("reconcile")
def reconcile_command(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the fixes, through the same path as run.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Re-read both sides in full: drift, conflicts, duplicates, unlinked projects and
    customers with suggested links, deleted records; --apply writes the fixes."""
    from datetime import UTC, datetime

    from sync import reconcile as view
    from sync.progress import pull_bars
    from sync.remote import build_remotes
    from sync.store import LockHeld

    config = _config(ctx)
    store = _store(config) if apply else _reading_store(config)
    try:
        with pull_bars(_bar_stream(ctx)) as progress:
            report = _guarded(
                lambda: view.reconcile(
                    config,
                    store,
                    build_remotes(config),
                    apply=apply,
                    now=datetime.now(UTC),
                    progress=progress,
                ),
                expected=(LockHeld,),
            )
    except LockHeld as exc:
        _fail(ExitCode.LOCKED, str(exc))
    finally:
        store.close()
    _show(report, view, as_json)
    if report.exit_code != ExitCode.OK:
        _fail(report.exit_code, report.message)


class ReportFormat(StrEnum):
    """How ``report`` renders."""

    text = "text"
    markdown = "markdown"
    html = "html"


class ReportView(StrEnum):
    """Other views of ``report`` (``--by``)."""

    segment = "segment"


@app.command("report")
def report_command(
    ctx: typer.Context,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer (CRM Account Id).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Only this Jira project (key).")
    ] = None,
    by: Annotated[
        ReportView | None, typer.Option("--by", help="segment: the customer-group view.")
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="text, markdown, or one HTML file.")
    ] = ReportFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")
    ] = None,
    per_customer: Annotated[
        Path | None,
        typer.Option(
            "--per-customer",
            help="Write one file per customer into this directory (the one you can send).",
        ),
    ] = None,
) -> None:
    """The progress report people read, from the state store alone (no network)."""
    from sync.report import ReportError, render_report, state_missing

    if per_customer is not None and (output is not None or by is not None):
        other = "-o" if output is not None else "--by"
        _fail(
            ExitCode.USAGE,
            f"--per-customer writes its own files and cannot be combined with {other}; "
            "drop one of them",
        )
    config = _config(ctx)
    missing = state_missing(config.state.url)
    if missing is not None:
        _fail(ExitCode.USAGE, missing)
    store = _store(config)
    if per_customer is not None:
        _report_per_customer(store, config, per_customer, fmt.value, customer, project)
        return
    try:
        text = _guarded(
            lambda: render_report(
                store,
                config,
                fmt=fmt.value,
                customer=customer,
                project=project,
                by=by.value if by else None,
            ),
            expected=(ReportError,),
        )
    except ReportError as exc:
        _fail(ExitCode.USAGE, str(exc))
    finally:
        store.close()
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(
            ExitCode.USAGE,
            f"cannot write {output} ({exc.strerror}); choose a writable path for -o",
        )
    typer.echo(f"report written to {output}", err=True)


def _report_per_customer(
    store: Any,
    config: Any,
    directory: Path,
    fmt: Any,
    customer: str | None,
    project: str | None,
) -> None:
    """``report --per-customer DIR``: the files on stdout, one path a line."""
    from sync.report import ReportError
    from sync.report.files import write_per_customer

    try:
        written = _guarded(
            lambda: write_per_customer(
                store, config, directory, fmt=fmt, customer=customer, project=project
            ),
            expected=(ReportError,),
        )
    except ReportError as exc:
        _fail(ExitCode.USAGE, str(exc))
    finally:
        store.close()
    for report in written:
        sys.stdout.write(f"{report.path}\n")
    if written:
        typer.echo(f"{len(written)} customer report(s) written to {directory}", err=True)
    else:
        typer.echo(
            "no customer has a linked Jira project: no report written "
            "(`jira-crm-sync reconcile` suggests links)",
            err=True,
        )


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply state-store migrations (also done automatically on an empty database)."""
    from sync.store import StoreError, current_revision, head_revision, upgrade
    from sync.store.db import create_engine

    config = _config(ctx)
    try:
        engine = create_engine(config.state.url)
    except StoreError as exc:  # e.g. a driver that is not installed: say what to install
        _fail(ExitCode.USAGE, str(exc))
    try:
        before = current_revision(engine)
        upgrade(engine)
        typer.echo(
            f"state store at revision {current_revision(engine)} "
            f"(was {before or 'empty'}; newest {head_revision()})"
        )
    finally:
        engine.dispose()


def _bar_stream(ctx: typer.Context) -> Any:
    """stderr when progress bars belong there (a terminal; not -q, not JSON logs); else None."""
    from sync.progress import wanted

    options = ctx.obj or {}
    show = wanted(
        sys.stderr,
        quiet=bool(options.get("quiet")),
        json_logs=options.get("log_format") is LogFormat.json,
    )
    return sys.stderr if show else None


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


def _reading_store(config: Any) -> Any:
    """The store for a command that writes nothing to it (a dry run, a plain reconcile):
    a missing one is not created (an empty one in memory stands in), none is migrated."""
    from sync.store import StoreError, open_store_for_reading

    try:
        return open_store_for_reading(config.state.url)
    except StoreError as exc:
        _fail(ExitCode.USAGE, str(exc))


def _guarded(
    work: Callable[[], Any], expected: tuple[type[Exception], ...] = (), store: Any = None
) -> Any:
    """Run ``work``; an unexpected exception becomes exit 5 with one line (traceback at -v).
    Exceptions in ``expected`` are the caller's to turn into their own exit code. With
    ``store``, a write it refuses for want of disk space or write access is exit 2."""
    import sqlalchemy as sa

    from sync.store.db import storage_failure

    passthrough: tuple[type[BaseException], ...] = (typer.Exit, *expected)
    try:
        return work()
    except passthrough:
        raise
    except sa.exc.DBAPIError as exc:
        failure = storage_failure(store.engine, exc) if store is not None else None
        if failure is None:
            _internal(exc)
        _fail(ExitCode.USAGE, str(failure))
    except Exception as exc:  # the one place that turns a bug into exit code 5
        _internal(exc)


def _internal(exc: Exception) -> NoReturn:
    """Exit 5 for a bug: one line, the traceback only at -vv."""
    logging.getLogger("jira_crm_sync").debug("internal error", exc_info=exc)
    _fail(
        ExitCode.INTERNAL,
        f"internal error ({type(exc).__name__}: {exc}); run again "
        "with -vv for the traceback and report it",
    )


def _print_json(document: Any) -> None:
    """The one JSON document a command prints on stdout with --json."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")


def _show(report: Any, view: Any, as_json: bool) -> None:
    """A report as JSON (--json), rich tables on a terminal, else aligned plain text."""
    if as_json:
        _print_json(report.as_dict())
    elif sys.stdout.isatty():
        from rich.console import Console

        view.render_rich(report, Console())
    else:
        sys.stdout.write(view.render_text(report))


def _fail(code: ExitCode, message: str) -> NoReturn:
    typer.echo(f"jira-crm-sync: {message}", err=True)
    raise typer.Exit(int(code))


def main() -> None:
    """Console-script entry point."""
    app()
