"""``--help`` of every command reads well: config keys in brackets survive (rich markup
took ``[schedule]`` for a style tag), a flag shows no ``<bool>``/``<int>`` value label,
the choices of every enum option are listed, a docstring's sentences are not broken at
its source line ends, and typer's shell completion is offered."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from sync.cli import app

#: Wide enough for the longest summary on one line; rich reads COLUMNS.
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}


def commands(
    group: TyperGroup | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], typer.core.TyperCommand]]:
    """Every leaf command with its path (``("db", "upgrade")``)."""
    group = group or typer.main.get_group(app)
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, TyperGroup):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


ALL = sorted(commands(), key=lambda pair: pair[0])
IDS = [" ".join(path) for path, _ in ALL]


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def summary(command: typer.core.TyperCommand) -> str:
    """The first paragraph of the command's docstring, on one line."""
    paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0]
    return " ".join(paragraph.split())


def test_the_commands_are_all_there() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert names == {
        "run", "serve", "status", "check", "reconcile", "report", "init", "demo",
        "sandbox", "db upgrade",
    }  # fmt: skip


def test_config_keys_in_brackets_survive() -> None:
    text = help_of("serve")
    assert "Run cycles on [schedule] every until SIGTERM; /healthz and /metrics on [serve] " in text
    assert "[serve] listen" in help_of()  # the command list too


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_flags_have_no_value_label(path: tuple[str, ...], command: typer.core.TyperCommand) -> None:
    lines = help_of(*path).splitlines()
    ctx = typer.Context(command)
    flags = [
        p for p in command.get_params(ctx) if isinstance(p, TyperOption) and (p.is_flag or p.count)
    ]
    assert flags, "every command has at least --help, -q and -v"
    for flag in flags:
        name = max(flag.opts, key=len)
        (line,) = [
            line for line in lines if f" {name} " in line and flag.help and flag.help[:20] in line
        ]
        label = line.split(name, 1)[1].split(flag.help[:20])[0]
        assert "<" not in label, line


def test_the_group_flags_have_no_value_label() -> None:
    text = help_of()
    assert "<bool>" not in text and "<int>" not in text  # was `-q <bool>`, `-v <int>`


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_choices_are_listed(path: tuple[str, ...], command: typer.core.TyperCommand) -> None:
    text = help_of(*path)
    ctx = typer.Context(command)
    for param in command.get_params(ctx):
        if not isinstance(param, TyperOption) or param.is_flag:
            continue
        choices = getattr(param.type_descriptor, "choices", None)
        if choices:
            values = [c.value if isinstance(c, Enum) else str(c) for c in choices]
            assert "|".join(values) in text, (param.opts, values)


def test_the_enum_options_people_pick_from() -> None:
    """The options SPEC and README name with their choices."""
    assert "<pull|push>" in help_of("run")
    assert "<text|markdown|html>" in help_of("report")
    assert "<cloud|server>" in help_of("init")
    assert "<password|oauth_password|jwt|client_credentials|session>" in help_of("init")
    assert "<text|json>" in help_of("status")
    sandbox = help_of("sandbox")
    assert "<cloud|server>" in sandbox and "<en|zh|de>" in sandbox


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_sentences_are_not_broken_at_source_line_ends(
    path: tuple[str, ...], command: typer.core.TyperCommand
) -> None:
    """On a wide terminal each summary is one line, in the command list and in the
    command's own help (the docstrings wrap at 100 columns in the source)."""
    want = summary(command)
    listed = [" ".join(line.strip(" │").split()) for line in help_of(*path[:-1]).splitlines()]
    assert any(want in line for line in listed), want
    own = [" ".join(line.strip(" │").split()) for line in help_of(*path).splitlines()]
    assert want in own, want


def test_shell_completion_is_offered() -> None:
    text = help_of()
    assert "--install-completion" in text and "--show-completion" in text
    # The installed console script, as a shell's completion runs it (typer reads the
    # program name from the process, which an in-process runner does not have to be).
    # The shell is named in the environment: `--show-completion` guesses it from the
    # parent processes, which under pytest or CI need not include a shell at all.
    script = Path(sys.executable).parent / "jira-crm-sync"
    done = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "_JIRA_CRM_SYNC_COMPLETE": "source_bash"},
    )
    assert done.returncode == 0, done.stderr
    assert "_JIRA_CRM_SYNC_COMPLETE" in done.stdout
