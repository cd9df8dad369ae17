"""Jira connector: a thin typed layer over the ``jira`` client (pull pages, push writes).

Build one with :func:`open_jira` (no network call), then :meth:`JiraConnector.connect`,
:meth:`~JiraConnector.pull_issues`, :meth:`~JiraConnector.list_keys` and the writes.

The names below load their module when first used: the config reads
:mod:`connectors.jira.settings` for every command, and one that talks to no Jira
(``status``, ``report`` from the store) imports neither the ``jira`` client nor requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.jira.client import JiraClient, build_client
    from connectors.jira.connector import CommentInfo, JiraConnector, ServerFacts, open_jira
    from connectors.jira.fields import FieldCatalog
    from connectors.jira.paging import IssueCursor, IssuePull, RawIssue
    from connectors.jira.settings import (
        DELETE_OWN_COMMENTS,
        JIRA_READ_ONLY_POSTS,
        JIRA_TEMPLATES,
        JiraSettings,
        jira_meter,
    )

__all__ = [
    "DELETE_OWN_COMMENTS",
    "JIRA_READ_ONLY_POSTS",
    "JIRA_TEMPLATES",
    "CommentInfo",
    "FieldCatalog",
    "IssueCursor",
    "IssuePull",
    "JiraClient",
    "JiraConnector",
    "JiraSettings",
    "RawIssue",
    "ServerFacts",
    "build_client",
    "jira_meter",
    "open_jira",
]

_MODULES = {
    "DELETE_OWN_COMMENTS": "connectors.jira.settings",
    "JIRA_READ_ONLY_POSTS": "connectors.jira.settings",
    "JIRA_TEMPLATES": "connectors.jira.settings",
    "CommentInfo": "connectors.jira.connector",
    "FieldCatalog": "connectors.jira.fields",
    "IssueCursor": "connectors.jira.paging",
    "IssuePull": "connectors.jira.paging",
    "JiraClient": "connectors.jira.client",
    "JiraConnector": "connectors.jira.connector",
    "JiraSettings": "connectors.jira.settings",
    "RawIssue": "connectors.jira.paging",
    "ServerFacts": "connectors.jira.connector",
    "build_client": "connectors.jira.client",
    "jira_meter": "connectors.jira.settings",
    "open_jira": "connectors.jira.connector",
}


def __getattr__(name: str) -> Any:
    """A public name, its module imported on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
