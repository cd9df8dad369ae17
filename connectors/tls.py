"""Make a configured ``ca_bundle`` win over the environment.

``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's own
``verify`` (psf/requests#3829), so a ``ca_bundle`` set in our config would silently be
ignored on hosts that export those variables. An adapter that pins ``verify`` at send
time is honoured by every client built on ``requests`` (``jira``, ``simple-salesforce``).
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class CaBundleAdapter(HTTPAdapter):
    """HTTP(S) adapter that verifies against one CA bundle (or, with None, as requests does)."""

    def __init__(self, ca_bundle: str | None = None, **kwargs: Any) -> None:
        self.ca_bundle = ca_bundle
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with ``verify`` pinned to the bundle (TLS verification stays on)."""
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


def pin_ca_bundle(session: requests.Session, ca_bundle: str | None) -> requests.Session:
    """Verify every HTTPS request of ``session`` against ``ca_bundle`` when one is given."""
    if ca_bundle:
        session.verify = ca_bundle
        session.mount("https://", CaBundleAdapter(ca_bundle))
    return session


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying SSL context for httpx: trusting ``ca_bundle`` only when one is given,
    else the system's CAs. Passed explicitly, it wins over ``SSL_CERT_FILE`` as the
    adapter above wins over ``REQUESTS_CA_BUNDLE``."""
    return (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    )
