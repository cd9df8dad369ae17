"""The httpx transport every HubSpot request goes through: metered, https only.

The counterpart of :func:`connectors.calls.instrument` for httpx: each attempt (retries
included, they cost the portal's quota too) is charged to the :class:`CallMeter` before it
is sent, and a request to a plain ``http://`` URL is refused before anything leaves.
"""

from __future__ import annotations

import logging
import re
import time

import httpx

from connectors.calls import CallMeter
from connectors.tls import ssl_context

log = logging.getLogger(__name__)

#: Concrete paths -> endpoint templates, applied in order (see CallMeter.template).
TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/crm/v3/objects/[^/]+/search$"), "/crm/v3/objects/{type}/search"),
    (re.compile(r"^/crm/v3/objects/[^/]+/batch/([a-z]+)$"), r"/crm/v3/objects/{type}/batch/\1"),
    (re.compile(r"^/crm/v3/objects/[^/{]+/[^/{]+$"), "/crm/v3/objects/{type}/{id}"),
    (re.compile(r"^/crm/v3/objects/[^/{]+$"), "/crm/v3/objects/{type}"),
    (
        re.compile(r"^/crm/v4/associations/[^/]+/[^/]+/batch/([a-z/]+)$"),
        r"/crm/v4/associations/{from}/{to}/batch/\1",
    ),
    (re.compile(r"^/crm/v3/properties/[^/]+$"), "/crm/v3/properties/{type}"),
    (re.compile(r"^/crm/v3/pipelines/[^/]+$"), "/crm/v3/pipelines/{type}"),
    (re.compile(r"^/crm/v3/schemas/[^/]+$"), "/crm/v3/schemas/{type}"),
    (re.compile(r"^/files/v3/files/[^/{]+$"), "/files/v3/files/{id}"),
)
#: POSTs that change nothing: searches, batch reads, the token grant.
READ_ONLY_POSTS = ("/search", "/batch/read", "/oauth/v1/token")


def new_meter(budget: int | None = None) -> CallMeter:
    """A call meter for the HubSpot side with our endpoint templates."""
    return CallMeter("hubspot", TEMPLATES, budget, read_only_posts=READ_ONLY_POSTS)


class PlainHttpRefused(httpx.TransportError):
    """A request to a plain ``http://`` URL: refused before anything is sent."""


class MeteredTransport(httpx.BaseTransport):
    """Charges the meter for every request, refuses plain http, then sends through
    ``inner`` (a real HTTPS transport pinned to the CA bundle unless one is injected)."""

    def __init__(
        self,
        meter: CallMeter,
        ca_bundle: str | None = None,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.meter = meter
        self.inner = inner or httpx.HTTPTransport(verify=ssl_context(ca_bundle))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse http://, charge the meter (BudgetExhausted when spent), send."""
        url = request.url
        if url.scheme != "https":
            raise PlainHttpRefused(
                f"refused to send {request.method} {url.scheme}://{url.host}{url.path} over "
                "plain http:// (the token would travel in clear text); a redirect or an "
                "answer pointed there: use the portal's https:// address",
                request=request,
            )
        self.meter.charge(request.method, str(url))
        started = time.monotonic()
        response = self.inner.handle_request(request)
        log.debug(
            "hubspot %s %s -> HTTP %s in %.2f s",
            request.method,
            url.path,
            response.status_code,
            time.monotonic() - started,
        )
        return response

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()
