"""The config snippets on the README's first screen are real: each replaces the example
config's CRM sections and the result loads with the config loader as a user's file would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"\n\n((?:    .*\n)+)", text)
    return [
        "\n".join(line[4:] for line in block.splitlines())
        for block in blocks
        if block.startswith("    [crm]\n")
    ]


def _with_crm(snippet: str, key_file: Path) -> str:
    example = (ROOT / "sync" / "config.example.toml").read_text(encoding="utf-8")
    head, rest = example.split("\n[crm]\n", 1)
    tail = rest[rest.index("\n[link]\n") :]
    return (
        f"{head}\n{snippet.replace('/etc/jira-crm-sync/salesforce-jwt.key', str(key_file))}\n{tail}"
    )


def test_the_first_screen_shows_both_crms() -> None:
    kinds = sorted(re.search(r'kind = "(\w+)"', s).group(1) for s in _snippets())  # type: ignore[union-attr]
    assert kinds == ["hubspot", "salesforce"]


@pytest.mark.parametrize("index", [0, 1])
def test_each_first_screen_snippet_loads(tmp_path: Path, index: int) -> None:
    key_file = tmp_path / "salesforce-jwt.key"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    key_file.chmod(0o600)
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text(_with_crm(_snippets()[index], key_file), encoding="utf-8")
    path.chmod(0o600)
    environ = {
        "JIRA_API_TOKEN": "t",
        "SALESFORCE_CONSUMER_KEY": "k",
        "HUBSPOT_ACCESS_TOKEN": "h",
    }
    config = load_config(path, environ=environ)
    assert config.crm.kind == re.search(r'kind = "(\w+)"', _snippets()[index]).group(1)  # type: ignore[union-attr]
