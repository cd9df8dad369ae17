"""The options every command takes, before or after the command name (SPEC section 4).

``jira-crm-sync --config x.toml run -v`` and ``jira-crm-sync run --config x.toml -v`` are
the same: the group takes ``--config``, ``--connections``, ``--connection``,
``--log-format``, ``-v`` and ``-q``, and :func:`takes_global_options` gives every command
the same. A value given after the
command wins over one given before it (``-v`` counts add up, ``-q`` from either side holds).
The merged :class:`GlobalOptions` live in the click context's ``meta`` for the command
to read (:func:`options_of`).

Also here: ``--version``, and the command classes that keep help readable and turn a
usage error into one line.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

#: Where the merged options live in ``ctx.meta`` (shared by every context of one call).
META_KEY = "jira_crm_sync.options"
#: The help panel of the four options in each command's ``--help``.
PANEL = "Global options (before or after the command)"
DISTRIBUTION = "jira-crm-sync"


class LogFormat(StrEnum):
    """How log lines are written to stderr."""

    text = "text"
    json = "json"


@dataclass(frozen=True)
class GlobalOptions:
    """``--config``, ``--connections``, ``--connection``, ``--log-format``, ``-v`` and
    ``-q`` as one value."""

    config: Path | None = None
    log_format: LogFormat = LogFormat.text
    verbose: int = 0
    quiet: bool = False
    #: the directory of connection configs (sync.connections)
    connections: Path | None = None
    #: the one connection of that directory a command works on
    connection: str | None = None

    def then(
        self,
        config: Path | None,
        log_format: LogFormat | None,
        verbose: int,
        quiet: bool,
        connections: Path | None = None,
        connection: str | None = None,
    ) -> GlobalOptions:
        """These options updated by the ones given after the command name."""
        return GlobalOptions(
            config=config if config is not None else self.config,
            log_format=log_format if log_format is not None else self.log_format,
            verbose=self.verbose + verbose,
            quiet=self.quiet or quiet,
            connections=connections if connections is not None else self.connections,
            connection=connection if connection is not None else self.connection,
        )


def options_of(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation (defaults before the group has run)."""
    found = ctx.meta.get(META_KEY)
    return found if isinstance(found, GlobalOptions) else GlobalOptions()


def _set(ctx: typer.Context, options: GlobalOptions) -> GlobalOptions:
    from sync.cli.logs import setup_logging

    ctx.meta[META_KEY] = options
    setup_logging(options)
    return options


# -- the four options, once for the group and once for each command ---------------------

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Config file (default ./jira-crm-sync.toml, then $JIRA_CRM_SYNC_CONFIG).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
ConnectionsOption = Annotated[
    Path | None,
    typer.Option(
        "--connections",
        help="Directory of connection configs, one <name>.toml per (Jira site, CRM org) "
        "pair (default $JIRA_CRM_SYNC_CONNECTIONS); serve serves them all.",
        envvar="JIRA_CRM_SYNC_CONNECTIONS",
        rich_help_panel=PANEL,
        show_default=False,
        show_envvar=False,
    ),
]
ConnectionOption = Annotated[
    str | None,
    typer.Option(
        "--connection",
        help="Work on this connection of --connections (its <name>.toml).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        help="Log lines on stderr as text, or as JSON (one object a line, for journald).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="Show what the cycle does (-v: its steps; -vv: every call, and the libraries' "
        "debug lines).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Only errors, on stderr; nothing on stdout but --json documents and reports.",
        rich_help_panel=PANEL,
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(DISTRIBUTION)
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown (not installed)"
        typer.echo(f"{DISTRIBUTION} {found}")
        raise typer.Exit()


def group_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    connections: ConnectionsOption = None,
    connection: ConnectionOption = None,
    log_format: LogFormatOption = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Keeps Jira work and CRM customers in step.

    The options below go before or after the command name; each command's --help lists
    its own.
    """
    _set(ctx, GlobalOptions().then(config, log_format, verbose, quiet, connections, connection))


def takes_global_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a command that also takes the global options after its name.

    The wrapper's signature is ``func``'s plus a context (when ``func`` has none) and the
    four options, so typer builds them like any other; the wrapper merges them into the
    group's and calls ``func`` with its own parameters only.
    """
    signature = inspect.signature(func, eval_str=True)
    params = list(signature.parameters.values())
    context_name = next(
        (p.name for p in params if p.annotation is typer.Context),
        None,
    )
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, kind, default in (
            ("global_config", ConfigOption, None),
            ("global_connections", ConnectionsOption, None),
            ("global_connection", ConnectionOption, None),
            ("global_log_format", LogFormatOption, None),
            ("global_verbose", VerboseOption, 0),
            ("global_quiet", QuietOption, False),
        )
    ]
    if context_name is None:
        params.insert(0, inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD))
        params[0] = params[0].replace(annotation=typer.Context)

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs[context_name] if context_name is not None else kwargs.pop("ctx")
        _set(
            ctx,
            options_of(ctx).then(
                kwargs.pop("global_config"),
                kwargs.pop("global_log_format"),
                kwargs.pop("global_verbose"),
                kwargs.pop("global_quiet"),
                kwargs.pop("global_connections"),
                kwargs.pop("global_connection"),
            ),
        )
        return func(*args, **kwargs)

    full = [*params, *added]
    command.__signature__ = signature.replace(parameters=full)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in full}
    return command


# -- help and usage errors ---------------------------------------------------------------


def _without_type_labels(params: list[Any]) -> list[Any]:
    """Flags and counters take no value: no ``<bool>``/``<int>`` label in rich help
    (``-q <bool>`` reads as if ``-q true`` were wanted)."""
    for param in params:
        unlabelled = isinstance(param, TyperOption) and param.metavar is None
        if unlabelled and (param.is_flag or param.count):
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows no value label on flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, flags unlabelled (see :func:`_without_type_labels`)."""
        return _without_type_labels(super().get_params(ctx))


class Group(TyperGroup):
    """The ``jira-crm-sync`` group: unlabelled flags, and a usage error as one line."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, flags unlabelled (see :func:`_without_type_labels`)."""
        return _without_type_labels(super().get_params(ctx))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; a usage error (unknown option, bad value) exits 2 with
        one line naming it and the ``--help`` to read, not a framed panel."""
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            typer.echo("jira-crm-sync: aborted; nothing more was done", err=True)
            sys.exit(1)
        except typer.TyperException as exc:  # click's usage and parameter errors
            sys.exit(_usage_error(exc))
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: typer.TyperException) -> int:
    """Print a click error as one line with the ``--help`` that explains; its exit code."""
    # typer words a bad choice "Value error, 'x' is not one of ...": the value is enough.
    message = exc.format_message().replace("Value error, ", "").strip().rstrip(".")
    if not message:  # no command given: the help was just printed, it says it all
        return int(getattr(exc, "exit_code", 2))
    where = getattr(exc, "ctx", None)
    path = where.command_path if where is not None else DISTRIBUTION
    typer.echo(f"jira-crm-sync: {message}; see `{path} --help`", err=True)
    return int(getattr(exc, "exit_code", 2))
