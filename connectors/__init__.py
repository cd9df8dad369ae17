"""Connectors: thin layers over the Jira and CRM clients, and the sandbox that stands in for them."""
