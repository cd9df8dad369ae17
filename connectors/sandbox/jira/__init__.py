"""Emulated Jira REST API (Cloud enhanced search or Server startAt paging) for the sandbox."""

from connectors.sandbox.jira.models import JiraBackend, JiraComment

__all__ = ["JiraBackend", "JiraComment"]
