"""The ``jira-crm-sync`` command line: thin commands over sync/ and the sandbox."""

from __future__ import annotations

import json
import logging
import signal
import sys
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from sync.exitcodes import ExitCode

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


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="JIRA_CRM_SYNC_CONFIG",
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


def _fail(code: ExitCode, message: str) -> None:
    typer.echo(f"jira-crm-sync: {message}", err=True)
    raise typer.Exit(int(code))


def main() -> None:
    """Console-script entry point."""
    app()
