"""Sandbox: local emulators of the Jira and Salesforce REST APIs (SPEC section 8)."""
