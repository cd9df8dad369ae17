"""Pathological config (issue 13, item 20): what the loader reads is bounded and every
problem is named, exit 2, never a hang, a memory blow-up, a traceback or exit 5: arrays
nested 500 deep, a FIFO or /dev/zero as the config or a ``*_file`` secret, files too big,
a byte-order mark, a 10 MB ``[jira] jql``, an unterminated ``${``, an empty
``[link] order``."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.sandbox.config_file import sandbox_config_text
from connectors.sandbox.stack import Endpoints, Sandbox
from sync.config import ConfigFileError, load_config
from tests.reliability.helpers import cli

CLI = Path(sys.executable).parent / "jira-crm-sync"


def _base_text(tmp_path: Path) -> str:
    box = Sandbox(issues=2, accounts=1, seed=1)
    box.endpoints = Endpoints("https://127.0.0.1:9", "https://127.0.0.1:10", None)
    return sandbox_config_text(box, f"sqlite:///{tmp_path / 'state.db'}")


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _token_line(text: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith("api_token = "))
    return line


def _problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, environ=environ or {})
    return caught.value.problems


def _cli_refuses(path: Path, *fragments: str) -> None:
    """`check` and `run` both exit 2, naming the problem, with no traceback."""
    for command in (["check"], ["run", "--dry-run"]):
        result = cli(str(path), *command)
        output = result.stdout + result.stderr
        assert result.exit_code == 2, (command, output)
        assert "Traceback" not in output, output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert all(f in output for f in fragments), (command, fragments, output)


def test_arrays_nested_500_deep(tmp_path: Path) -> None:
    text = _base_text(tmp_path) + "\n[link.static]\nX = " + "[" * 500 + "]" * 500 + "\n"
    text = text.replace("\n[link.static]\n\n", "\n", 1)  # the base's own empty table
    path = _write(tmp_path, text)
    _cli_refuses(path, "nested far too deep")
    shallow = _write(tmp_path, text.replace("[" * 500 + "]" * 500, "[" * 20 + "]" * 20))
    assert any(
        p.startswith("link.static.X.0.0.0.0.0: nested more than 8 levels")
        for p in _problems(shallow)
    ), _problems(shallow)


@pytest.mark.timeout(30)
def test_a_fifo_as_the_config_or_a_secret_file_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "a-fifo"
    os.mkfifo(fifo)
    _cli_refuses(fifo, f"{fifo} is not a regular file")
    text = _base_text(tmp_path)
    path = _write(tmp_path, text.replace(_token_line(text), f'api_token_file = "{fifo}"'))
    _cli_refuses(path, "jira.api_token_file:", f"{fifo} is not a regular file")
    jwt = text.replace('auth = "client_credentials"', 'auth = "jwt"\nusername = "u@example.com"')
    jwt = jwt.replace("consumer_secret = ", f'private_key_file = "{fifo}"\n# ')
    _cli_refuses(_write(tmp_path, jwt), "crm.salesforce.private_key_file:", "is not a regular file")


def _limited_memory() -> None:
    """In the child: 1.5 GiB of address space, so a regression fails fast, not the host."""
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.timeout(60)
def test_dev_zero_as_the_config_or_a_secret_file_is_refused(tmp_path: Path) -> None:
    """A subprocess: reading /dev/zero unbounded would eat the test runner's memory."""
    text = _base_text(tmp_path)
    secret = _write(tmp_path, text.replace(_token_line(text), 'api_token_file = "/dev/zero"'))
    env = {k: v for k, v in os.environ.items() if k != "JIRA_CRM_SYNC_CONFIG"}
    for config, expected in (
        ("/dev/zero", "/dev/zero is not a regular file"),
        (str(secret), "jira.api_token_file: /dev/zero is not a regular file"),
    ):
        done = subprocess.run(
            [str(CLI), "--config", config, "check"],
            capture_output=True,
            text=True,
            timeout=50,
            env=env,
            preexec_fn=_limited_memory,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert expected in done.stdout, done.stdout
        assert "Traceback" not in done.stdout + done.stderr


def test_files_too_big_are_refused_by_size(tmp_path: Path) -> None:
    text = _base_text(tmp_path)
    padded = _write(tmp_path, text + ("# padding\n" * 110_000))  # 1.1 MB of comments
    assert _problems(padded) == [f"{padded} is larger than 1,024 KiB; point --config (or "
                                 "$JIRA_CRM_SYNC_CONFIG) at the TOML config"]  # fmt: skip
    big_secret = tmp_path / "token.txt"
    big_secret.write_text("t" * (65 * 1024), encoding="utf-8")
    path = _write(tmp_path, text.replace(_token_line(text), f'api_token_file = "{big_secret}"'))
    assert any(
        p.startswith(f"jira.api_token_file: {big_secret} is larger than 64 KiB")
        for p in _problems(path)
    )


def test_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + _base_text(tmp_path).encode("utf-8"))
    _cli_refuses(path, "starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM")
    token = tmp_path / "token.txt"
    token.write_bytes(b"\xef\xbb\xbfsecret-value\n")
    text = _base_text(tmp_path)
    secret = _write(tmp_path, text.replace(_token_line(text), f'api_token_file = "{token}"'))
    assert _problems(secret) == [
        f"jira.api_token_file: {token} starts with a UTF-8 byte-order mark; save it without BOM"
    ]


def test_a_10_mb_jql_is_refused_at_once_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, _base_text(tmp_path).replace('jql = ""', 'jql = "${BIG_JQL}"'))
    huge = "labels = x OR " * 750_000 + "labels = y"  # 10.5 MB
    assert _problems(path, {"BIG_JQL": huge}) == [
        f"[jira] jql: is {len(huge):,} characters, more than the 10,000 allowed; shorten it"
    ]
    long_label = "x" * 5000
    labels = _write(
        tmp_path,
        _base_text(tmp_path).replace('label = "customer-at-risk"', f'label = "{long_label}"'),
    )
    assert _problems(labels) == [
        "push.jira.label: 5,000 characters, more than the 4,096 a value may have; check "
        "what the key (or its ${VARIABLE}) holds"
    ]


@pytest.mark.parametrize("value", ["${JIRA_TOKEN", "${}", "${1ABC}", "x-${JIRA_TOKEN"])
def test_an_unterminated_variable_is_named_not_taken_literally(tmp_path: Path, value: str) -> None:
    text = _base_text(tmp_path)
    path = _write(tmp_path, text.replace(_token_line(text), f'api_token = "{value}"'))
    problems = _problems(path, {"JIRA_TOKEN": "t"})
    assert problems == [
        "jira.api_token: has a ${ that is not a whole ${NAME} (no closing }, or a name other "
        "than letters, digits and _); write ${NAME}"
    ]
    assert "JIRA_TOKEN" not in problems[0]  # the value is never echoed
    _cli_refuses(path, "jira.api_token: has a ${")


def test_link_order_needs_a_rule_and_no_repeats(tmp_path: Path) -> None:
    text = _base_text(tmp_path)
    order = 'order = ["jira_field", "crm_field", "static"]'
    empty = _write(tmp_path, text.replace(order, "order = []"))
    assert _problems(empty) == [
        'link.order: must name at least one rule, e.g. ["jira_field", "crm_field", "static"]'
    ]
    _cli_refuses(empty, "link.order: must name at least one rule")
    repeated = _write(tmp_path, text.replace(order, 'order = ["static", "static"]'))
    assert any(p.startswith("link.order: a rule is repeated") for p in _problems(repeated))
