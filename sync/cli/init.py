"""``jira-crm-sync init``: a commented config from config.example.toml, never a secret."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sync.cli.common import guarded
from sync.cli.options import options_of
from sync.cli.output import fail, output
from sync.exitcodes import exit_for


class JiraAuth(StrEnum):
    """How the sync signs in to Jira."""

    cloud = "cloud"
    server = "server"


class SalesforceAuth(StrEnum):
    """How the sync signs in to Salesforce (every auth simple-salesforce supports)."""

    password = "password"
    oauth_password = "oauth_password"
    jwt = "jwt"
    client_credentials = "client_credentials"
    session = "session"


class Crm(StrEnum):
    """The CRM the config is for."""

    salesforce = "salesforce"
    hubspot = "hubspot"


class HubSpotAuth(StrEnum):
    """How the sync signs in to HubSpot."""

    private_app = "private_app"
    oauth = "oauth"


def init(
    ctx: typer.Context,
    output_path: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write (default --config, else ./jira-crm-sync.toml).",
            show_default=False,
        ),
    ] = None,
    jira_url: Annotated[str | None, typer.Option(help="Jira site URL.")] = None,
    jira_auth: Annotated[
        JiraAuth | None,
        typer.Option(help="cloud: e-mail and API token; server: a personal access token."),
    ] = None,
    jira_email: Annotated[
        str | None, typer.Option(help="Atlassian account e-mail (cloud).")
    ] = None,
    projects: Annotated[
        str | None, typer.Option(help="Jira project keys, comma-separated.")
    ] = None,
    crm: Annotated[
        Crm | None,
        typer.Option(help="The CRM: salesforce (default) or hubspot.", show_default=False),
    ] = None,
    salesforce_auth: Annotated[
        SalesforceAuth | None, typer.Option(help="How to sign in to Salesforce.")
    ] = None,
    salesforce_login_url: Annotated[
        str | None, typer.Option(help="Login or My Domain URL.")
    ] = None,
    salesforce_instance_url: Annotated[
        str | None, typer.Option(help="Instance URL (session auth).")
    ] = None,
    salesforce_username: Annotated[str | None, typer.Option(help="Salesforce username.")] = None,
    salesforce_private_key_file: Annotated[
        str | None, typer.Option(help="JWT private key file (jwt auth).")
    ] = None,
    state_url: Annotated[
        str | None, typer.Option(help="State store URL (default: SQLite in the state dir).")
    ] = None,
    jira_ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the CAs Jira's certificate needs.")
    ] = None,
    salesforce_ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the CAs Salesforce's certificate needs.")
    ] = None,
    hubspot_auth: Annotated[
        HubSpotAuth | None,
        typer.Option(help="private_app (access token) or oauth (--crm hubspot)."),
    ] = None,
    hubspot_base_url: Annotated[
        str | None, typer.Option(help="HubSpot API URL (default https://api.hubapi.com).")
    ] = None,
    hubspot_client_id: Annotated[
        str | None, typer.Option(help="The OAuth app's client id (oauth auth).")
    ] = None,
    hubspot_ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the CAs HubSpot's certificate needs.")
    ] = None,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Sign in (secrets from the environment) and propose projects, fields and "
            "objects from what the sites hold.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    prompt: Annotated[
        bool | None,
        typer.Option(
            "--prompt/--no-input",
            help="Ask for values not given as flags (default: only when stdin is a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a commented config from config.example.toml; never writes a secret into it."""
    import os
    from dataclasses import replace

    from connectors.exceptions import ConnectorError
    from sync.config import DEFAULT_CONFIG_NAME
    from sync.init_config import (
        InitError,
        collect,
        discover_sites,
        example_text,
        render,
        secret_variables,
        sign_in_config,
        write_config,
    )

    out = output(ctx)
    path = output_path or options_of(ctx).config or Path(DEFAULT_CONFIG_NAME)
    given = {
        "jira-url": jira_url,
        "jira-auth": jira_auth.value if jira_auth else None,
        "jira-email": jira_email,
        "projects": projects,
        "salesforce-auth": salesforce_auth.value if salesforce_auth else None,
        "salesforce-login-url": salesforce_login_url,
        "salesforce-instance-url": salesforce_instance_url,
        "salesforce-username": salesforce_username,
        "salesforce-private-key-file": salesforce_private_key_file,
        "state-url": state_url,
        "jira-ca-bundle": jira_ca_bundle,
        "salesforce-ca-bundle": salesforce_ca_bundle,
        "crm": crm.value if crm else None,
        "hubspot-auth": hubspot_auth.value if hubspot_auth else None,
        "hubspot-base-url": hubspot_base_url,
        "hubspot-client-id": hubspot_client_id,
        "hubspot-ca-bundle": hubspot_ca_bundle,
    }
    interactive = sys.stdin.isatty() if prompt is None else prompt

    def ask(question: str, default: str | None) -> str:
        return str(typer.prompt(question, default=default, err=True))

    def tell(message: str) -> None:  # why an answer was not taken: shown also under -q
        typer.echo(message, err=True)

    try:
        if path.exists() and not force:  # before any question is asked
            raise InitError(
                f"{path} exists; pass --force to overwrite it, or --output PATH to write elsewhere"
            )
        asker = ask if interactive else None
        answers = collect(given, asker, tell, discover=discover)
        found = None
        if discover:
            config = sign_in_config(answers, os.environ)
            chosen, found = guarded(
                lambda: discover_sites(config, given, asker, tell),
                expected=(ConnectorError, InitError),
                say=lambda exc: (
                    f"init --discover: {exc}; nothing was written"
                    if isinstance(exc, ConnectorError)
                    else str(exc)
                ),
            )
            answers = replace(answers, projects=chosen)
        variables = secret_variables(answers)
        text = render(example_text(), answers, found)
        guarded(lambda: write_config(path, text, variables, force))
    except InitError as exc:
        fail(exit_for(exc), str(exc))
    if found is not None:
        out.line("Discovered (each choice is also a comment in the file):")
        for line in found.lines():
            out.line(f"  - {line}")
    out.line(f"wrote {path} (readable by you only); it holds no secret.")
    out.line("Set these in the environment of every run (or use *_file keys instead):")
    for name, what in variables:
        out.line(f"  {name:<28} {what}")
    if answers.salesforce_private_key_file:
        out.line(
            f"and put the JWT private key at {answers.salesforce_private_key_file} (chmod 600)."
        )
    out.line(f"Then run: jira-crm-sync --config {path} check --online")
