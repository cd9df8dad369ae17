"""The ``jira`` client's private API is used in one adapter module only.

``jira.JIRA`` is driven through internals (its session, URL builder, JSON reader and the
facts it keeps of the server) that a release of ``jira`` may rename; one module,
``connectors/jira/client.py``, is where they are followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "connectors" / "jira" / "client.py"
#: Attributes of ``jira.JIRA`` (and its session) that are not its public API.
PRIVATE = {"_session", "_get_url", "_get_json", "_version", "_is_cloud", "deploymentType"}


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE
    ]


def test_only_the_adapter_touches_the_clients_private_api() -> None:
    sources = [
        path
        for folder in ("connectors", "sync", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ADAPTER and "sandbox" not in path.relative_to(ROOT).parts
    ]
    assert len(sources) > 50  # the tree was found
    found = [use for path in sources for use in _private_uses(path)]
    assert found == []
    assert _private_uses(ADAPTER)  # the adapter is where they are
