"""The Salesforce emulator: an org seeded from the sandbox world behind the REST API
that ``simple-salesforce`` speaks (logins, describe, SOQL, sObject CRUD and upsert,
sObject Collections, Composite), with Salesforce's errors, sessions and daily API budget.

``models.py`` holds the backend, ``routes.py`` (with ``sobjects.py``, ``composite.py``,
``auth.py``) the HTTP side, ``soql.py``/``query.py`` the SOQL subset.
"""

from connectors.sandbox.salesforce.models import SalesforceBackend

__all__ = ["SalesforceBackend"]
