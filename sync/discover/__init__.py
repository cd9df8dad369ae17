"""`init --discover` and the suggestions of `check --online`: what the two sites hold.

A new user should not need custom field ids, nor guess names. Discovery signs in to both
sides and spends a handful of calls (:mod:`sync.discover.calls`): the projects in reach,
Jira's ``/field``, one search of the newest issues in scope with every candidate field;
on the CRM's side its connector's discovery (:class:`connectors.crm.Discoverable`)
confirms the sampled customer ids, and judges its own metadata and a sample of customers,
answering in neutral values (:mod:`connectors.discovery`). It judges a field by its type
and by what its values look like, read exactly as a sync reads them; a display name only
breaks ties, because names are localised and repeat (API-NOTES) and field types are not.

Every decision is a pure function of those answers (:mod:`sync.discover.jira_fields`,
the connector's, :func:`decide`). The result, a :class:`Discovery`, is what init writes
into the config (:meth:`Discovery.settings`) and prints (:meth:`Discovery.lines`);
`check --online` turns the same choices into "did you mean" hints (:func:`jira_hints`,
:func:`crm_hints`). Nothing here holds or writes a secret.
"""

from sync.discover.calls import (
    CRM_ROLES,
    SAMPLE_ISSUES,
    Sample,
    crm_hints,
    decide,
    discover,
    jira_hints,
    projects_in_reach,
)
from sync.discover.result import Candidate, Choice, Discovery, Project, printable

__all__ = [
    "CRM_ROLES",
    "SAMPLE_ISSUES",
    "Candidate",
    "Choice",
    "Discovery",
    "Project",
    "Sample",
    "crm_hints",
    "decide",
    "discover",
    "jira_hints",
    "printable",
    "projects_in_reach",
]
