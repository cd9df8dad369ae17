"""``jira-crm-sync sandbox``: emulated Jira and Salesforce (and, with ``--crm hubspot``, a
HubSpot portal of the same world) over HTTPS on loopback."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from sync.cli.output import fail
from sync.exitcodes import ExitCode


class JiraMode(StrEnum):
    """Which Jira deployment the sandbox emulates."""

    cloud = "cloud"
    server = "server"


class SandboxCrm(StrEnum):
    """The CRM the written config points at (Salesforce is served either way)."""

    salesforce = "salesforce"
    hubspot = "hubspot"


class SandboxLocale(StrEnum):
    """The language of the sandbox's Jira site (its field names)."""

    en = "en"
    zh = "zh"
    de = "de"


def sandbox(
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    jira_port: Annotated[int, typer.Option(help="Jira port (0 picks a free one).")] = 0,
    salesforce_port: Annotated[int, typer.Option(help="Salesforce port (0 picks a free one).")] = 0,
    issues: Annotated[int, typer.Option(min=0, help="Jira issues in the world.")] = 500,
    accounts: Annotated[int, typer.Option(min=0, help="Salesforce accounts.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 1,
    latency_ms: Annotated[
        int, typer.Option(min=0, help="Delay added to every call, in milliseconds.")
    ] = 0,
    jira_mode: Annotated[JiraMode, typer.Option(help="Emulate Jira Cloud or Server.")] = (
        JiraMode.cloud
    ),
    locale: Annotated[
        SandboxLocale, typer.Option(help="The Jira site's language: its field names.")
    ] = SandboxLocale.en,
    write_config: Annotated[
        Path | None,
        typer.Option(help="Also write a config file pointing at this sandbox.", show_default=False),
    ] = None,
    crm: Annotated[
        SandboxCrm,
        typer.Option(
            help="Also serve a HubSpot portal of the same world (hubspot), and point "
            "--write-config at it."
        ),
    ] = SandboxCrm.salesforce,
    hubspot_port: Annotated[
        int, typer.Option(help="HubSpot port with --crm hubspot (0 picks a free one).")
    ] = 0,
) -> None:
    """Serve an emulated Jira and Salesforce over HTTPS on loopback until SIGINT/SIGTERM.

    When ready, prints one JSON line on stdout: the URLs, the credentials and the CA
    bundle to trust (with --crm hubspot also hubspot_url, hubspot_token and the portal's
    OAuth app keys).
    """
    from connectors.sandbox.config_file import write_hubspot_config, write_sandbox_config
    from connectors.sandbox.hubspot.standalone import HubSpotSandbox
    from connectors.sandbox.server import make_tls
    from connectors.sandbox.stack import Sandbox

    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        fail(
            ExitCode.USAGE,
            f"--host {host} is not a loopback address; the sandbox "
            "only serves on loopback (use 127.0.0.1).",
        )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    box = Sandbox(
        issues=issues,
        accounts=accounts,
        seed=seed,
        jira_mode=jira_mode.value,
        latency_ms=latency_ms,
        locale=locale.value,
    )
    hub = (
        HubSpotSandbox(box.world, latency_ms=latency_ms, seed=seed + 2)
        if crm == SandboxCrm.hubspot
        else None
    )
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-sandbox-") as tls_dir:
        tls = make_tls(Path(tls_dir))
        try:
            box.serve(
                Path(tls_dir),
                host=host,
                jira_port=jira_port,
                salesforce_port=salesforce_port,
                tls=tls,
            )
            if hub is not None:
                hub.serve(Path(tls_dir), host=host, port=hubspot_port, tls=tls)
        except OSError as exc:
            box.stop()
            fail(
                ExitCode.USAGE,
                f"cannot listen on {host}: {exc.strerror}; choose other ports with "
                "--jira-port/--salesforce-port/--hubspot-port, or 0 for free ones.",
            )
        try:
            ready = box.ready_document()
            if hub is not None:
                ready.update(hub.ready_document())  # the same CA signs every server
            if write_config is not None:
                if hub is not None:
                    write_hubspot_config(box, hub, write_config)
                else:
                    write_sandbox_config(box, write_config)
            # The ready line is the command's product (SPEC section 8): also under -q.
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        finally:
            if hub is not None:
                hub.stop()
            box.stop()
