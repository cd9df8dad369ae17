"""The HubSpot emulator: a portal seeded from the sandbox world behind the CRM v3/v4 API
that ``hubspot-api-client`` and our connector speak (objects list/get/search, batch
read/create/update/upsert/archive, merges, associations v4, properties, schemas,
pipelines, owners, files, notes, OAuth tokens), with HubSpot's errors, scopes, search cap,
eventual consistency and burst/daily limits.

``models.py`` holds the backend (no HTTP) with ``gate.py`` (tokens, scopes, limits) and
``errors.py``, ``schema.py`` the portal's objects and properties, ``seed.py`` the world
it is loaded from, ``query.py`` search evaluation, ``responses.py`` with ``batches.py``
and ``links.py`` the handlers (request -> backend -> JSON) and ``urls.py`` the route
table. It is served like the other emulators by :class:`connectors.sandbox.app.SandboxApp`
(``HubSpotBackend`` implements its ``Backend`` Protocol), in-process through
:func:`connectors.sandbox.hubspot.transport.in_process` (an httpx transport) or over
HTTPS by :class:`connectors.sandbox.server.HttpsServer`.
"""

from connectors.sandbox.hubspot.models import HubSpotBackend

__all__ = ["HubSpotBackend"]
