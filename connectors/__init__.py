"""Connectors: thin layers over the Jira and CRM clients, and the sandbox standing in for them."""
