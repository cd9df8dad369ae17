"""Jira connector: a thin typed layer over the ``jira`` client (pull pages, push writes).

Build one with :func:`open_jira` (no network call), then :meth:`JiraConnector.connect`,
:meth:`~JiraConnector.pull_issues`, :meth:`~JiraConnector.list_keys` and the writes.
"""

from connectors.jira.client import JiraClient, build_client
from connectors.jira.connector import CommentInfo, JiraConnector, ServerFacts, open_jira
from connectors.jira.fields import FieldCatalog
from connectors.jira.paging import IssueCursor, IssuePull, RawIssue
from connectors.jira.settings import (
    JIRA_READ_ONLY_POSTS,
    JIRA_TEMPLATES,
    JiraSettings,
    jira_meter,
)

__all__ = [
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
