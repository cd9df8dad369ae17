"""The unified model: pure functions from Jira and CRM records to customers, progress and flags."""
