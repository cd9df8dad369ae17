"""Malformed config, generated: mutations of a valid sandbox config (wrong types, unknown
keys at every level, missing keys, bad URLs, bad schedules, negative limits) and broken
files (invalid TOML, invalid UTF-8, empty, a directory). Property: ``load_config`` raises
ConfigFileError and nothing else, and the problem names the key path; the real CLI exits 2
with no traceback.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sandbox.config_file import sandbox_config_text
from connectors.sandbox.stack import Endpoints, Sandbox
from sync.config import Config, ConfigFileError, load_config
from tests.reliability.helpers import cli

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _base_text() -> str:
    box = Sandbox(issues=2, accounts=1, seed=1)
    box.endpoints = Endpoints("https://127.0.0.1:9", "https://127.0.0.1:10", None)
    return sandbox_config_text(box, "sqlite:///state.db")


BASE_TEXT = _base_text()
BASE: dict[str, Any] = tomllib.loads(BASE_TEXT)
#: Tables whose keys are the user's (any name is valid there).
FREE_TABLES = {("link", "static"), ("push", "crm", "fields")}


def _leaves(node: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in node.items():
        if isinstance(value, dict) and (*path, key) not in FREE_TABLES:
            out += _leaves(value, (*path, key))
        else:
            out.append((*path, key))
    return out


def _tables(node: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for key, value in node.items():
        if isinstance(value, dict) and (*path, key) not in FREE_TABLES:
            out += _tables(value, (*path, key))
    return out


LEAVES = _leaves(BASE)
TABLES = _tables(BASE)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(value)


def to_toml(doc: dict[str, Any], path: tuple[str, ...] = ()) -> str:
    """A small TOML writer (tables as [headers], inline tables for the free ones)."""
    scalars = [
        (k, v) for k, v in doc.items() if not isinstance(v, dict) or (*path, k) in FREE_TABLES
    ]
    tables = [
        (k, v) for k, v in doc.items() if isinstance(v, dict) and (*path, k) not in FREE_TABLES
    ]
    lines = [f"[{'.'.join(json.dumps(p) for p in path)}]"] if path else []
    lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in scalars]
    text = "\n".join(lines) + "\n"
    for key, value in tables:
        text += "\n" + to_toml(value, (*path, key))
    return text


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(doc))


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _wrong(value: Any) -> list[Any]:
    """Values of a TOML type the key can never take."""
    table = {"nested": 1}
    if isinstance(value, bool):
        return ["maybe", table, [1]]
    if isinstance(value, (int, float)):
        return ["many", table, [1, 2]]
    if isinstance(value, str):
        return [7, table, [True]]
    if isinstance(value, list):
        return [table, 3.5]
    if isinstance(value, dict):
        return [3, "x"]
    raise TypeError(value)


def names(problems: list[str], path: tuple[str, ...]) -> bool:
    """Whether some problem names the key: ``a.b.c:`` or ``[a.b] c``."""
    dotted = ".".join(path)
    section = f"[{'.'.join(path[:-1])}] {path[-1]}"
    return any(dotted in p or section in p for p in problems)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, ...], str]:
    """(config document, the key path that is now wrong, what was done)."""
    doc = _copy(BASE)
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "missing", "url", "negative"]))
    if kind == "wrong_type":
        path = draw(st.sampled_from(LEAVES))
        parent = _get(doc, path[:-1])
        parent[path[-1]] = draw(st.sampled_from(_wrong(parent[path[-1]])))
    elif kind == "unknown_key":
        table = draw(st.sampled_from(TABLES))
        name = draw(st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True))
        parent = _get(doc, table)
        if name in parent:
            name += "_x"
        parent[name] = draw(st.sampled_from([1, "x", True, [1]]))
        path = (*table, name)
    elif kind == "missing":
        path = draw(
            st.sampled_from([("jira", "url"), ("crm", "salesforce", "auth"), ("jira",), ("crm",)])
        )
        del _get(doc, path[:-1])[path[-1]]
    elif kind == "url":  # ("" is valid only for instance_url: unset, the login decides)
        path = draw(
            st.sampled_from(
                [("jira", "url"), ("crm", "salesforce", "login_url"),
                 ("crm", "salesforce", "instance_url")]
            )
        )  # fmt: skip
        bad = draw(st.sampled_from(["ftp://x", "jira.example.com", "https//x", " "]))
        _get(doc, path[:-1])[path[-1]] = bad
    else:
        table = _get(doc, ("limits",))
        key = draw(st.sampled_from(sorted(table)))
        table[key] = draw(st.integers(max_value=0))
        path = ("limits", key)
    return doc, path, kind


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(to_toml(BASE), encoding="utf-8")
    assert isinstance(load_config(path, environ={}), Config)


@SETTINGS
@given(mutations())
def test_a_mutated_config_is_refused_naming_the_key(
    tmp_path: Path, mutation: tuple[dict[str, Any], tuple[str, ...], str]
) -> None:
    doc, path, kind = mutation
    file = tmp_path / "c.toml"
    file.write_text(to_toml(doc), encoding="utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_config(file, environ={})
    assert names(caught.value.problems, path), (kind, path, caught.value.problems)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_load_or_fail_as_a_config_error(tmp_path: Path, data: bytes) -> None:
    """Random files (invalid UTF-8, invalid TOML, valid TOML of the wrong shape)."""
    file = tmp_path / "c.toml"
    file.write_bytes(data)
    with pytest.raises(ConfigFileError) as caught:
        load_config(file, environ={})
    assert caught.value.problems and all(p.strip() for p in caught.value.problems)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(BASE_TEXT) - 1), st.binary(min_size=1, max_size=4))
def test_a_damaged_config_file_fails_as_a_config_error(
    tmp_path: Path, at: int, garbage: bytes
) -> None:
    """Bytes spliced into a valid file (truncations, invalid UTF-8, stray quotes)."""
    raw = BASE_TEXT.encode("utf-8")
    file = tmp_path / "c.toml"
    file.write_bytes(raw[:at] + garbage + raw[at + 1 :])
    try:
        load_config(file, environ={})
    except ConfigFileError as exc:
        assert exc.problems
    # (A splice can leave a valid config, e.g. inside a comment: loading it is fine.)


def _cli_cases(tmp_path: Path) -> list[tuple[str, Path, str]]:
    base = _copy(BASE)
    base["limits"]["jira_calls_per_cycle"] = -1
    negative = tmp_path / "negative.toml"
    negative.write_text(to_toml(base), encoding="utf-8")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(BASE_TEXT.replace("[serve]\n", "[serve]\nlistne = 1\n"), encoding="utf-8")
    utf8 = tmp_path / "utf8.toml"
    utf8.write_bytes(BASE_TEXT.encode() + b"\n# caf\xe9 \xff\n")
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    directory = tmp_path / "a-directory.toml"
    directory.mkdir()
    truncated = tmp_path / "truncated.toml"
    truncated.write_text(BASE_TEXT[: BASE_TEXT.index("[crm]") + 9], encoding="utf-8")
    return [
        ("limits.jira_calls_per_cycle", negative, "negative"),
        ("serve.listne: unknown key", unknown, "unknown"),
        ("utf-8", utf8, "invalid UTF-8"),
        ("jira: required", empty, "empty"),
        ("a-directory.toml", directory, "directory"),
        ("crm", truncated, "truncated"),
    ]


def test_the_cli_exits_2_without_a_traceback_naming_the_problem(tmp_path: Path) -> None:
    for fragment, path, what in _cli_cases(tmp_path):
        result = cli(str(path), "run", "--dry-run")
        output = result.stdout + result.stderr
        assert result.exit_code == 2, (what, output)
        assert "Traceback" not in output, (what, output)
        assert isinstance(result.exception, SystemExit), (what, repr(result.exception))
        assert fragment.lower() in result.stderr.lower(), (what, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("jira-crm-sync: "), what


@pytest.mark.parametrize("every", ["every day", "61 * * * *", "* * *", "-5m"])
def test_a_bad_schedule_stops_serve_in_one_line_before_anything_runs(
    tmp_path: Path, every: str
) -> None:
    """[schedule] every is checked by `check` and by `serve` (not on load: `run` ignores
    it); `serve` refuses it before opening the store or listening."""
    doc = _copy(BASE)
    doc["schedule"]["every"] = every
    doc["state"]["url"] = f"sqlite:///{tmp_path / 'never-created.db'}"
    path = tmp_path / "c.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    result = cli(str(path), "serve", "--cycles", "1")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("jira-crm-sync: [schedule] every"), line
    assert not (tmp_path / "never-created.db").exists()
