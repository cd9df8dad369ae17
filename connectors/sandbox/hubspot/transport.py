"""The HubSpot emulator mounted in-process for httpx clients (our connector), as
``SandboxApp.mount`` does for ``requests`` clients: the same dispatch, no socket."""

from __future__ import annotations

import httpx

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.http import DropConnection, SandboxRequest

IN_PROCESS_URL = "https://api.hubapi.sandbox"


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport answering every request from ``app``."""

    def __init__(self, app: SandboxApp, base_url: str = IN_PROCESS_URL) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Dispatch to the app; an injected dropped connection raises as a socket would."""
        url = request.url
        sandbox_request = SandboxRequest.build(
            request.method,
            url.raw_path.decode("ascii").split("?", 1)[0] or "/",
            url.query.decode("ascii"),
            dict(request.headers),
            request.read(),
            base_url=self.base_url,
        )
        try:
            answer = self.app.handle(sandbox_request)
        except DropConnection as exc:
            raise httpx.RemoteProtocolError(
                f"Server disconnected: {exc}", request=request
            ) from None
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)
