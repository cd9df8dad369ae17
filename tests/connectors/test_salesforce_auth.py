"""Every auth kind logs in against the sandbox; refusals and TLS failures say what to fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.exceptions import AuthError, ConfigError, UnreachableError
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.sandbox.server import make_tls
from connectors.sandbox.stack import IN_PROCESS_SALESFORCE_URL, Sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=20, seed=3)
    with sandbox.in_process():
        yield sandbox


def settings(box: Sandbox, auth: str = "password", **overrides: object) -> SalesforceSettings:
    c = box.credentials
    base = SalesforceSettings(
        auth=auth,  # type: ignore[arg-type]
        username=c.salesforce_username,
        password=c.salesforce_password,
        security_token=c.salesforce_security_token,
        consumer_key=c.salesforce_consumer_key,
        consumer_secret=c.salesforce_consumer_secret,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _private_key_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _logs_in_and_reads(connector: SalesforceConnector, box: Sandbox) -> None:
    connector.connect()
    pages = list(connector.pull_accounts())
    assert sum(len(p) for p in pages) == len(box.world.accounts)
    assert connector.api_usage is not None and connector.api_usage.used >= 1


def test_constructing_never_talks_to_the_network() -> None:
    with responses.RequestsMock() as mock:  # any request would fail: nothing is registered
        connector = SalesforceConnector(
            SalesforceSettings(username="u", password="p", security_token="t")
        )
        assert len(mock.calls) == 0
    assert connector.meter.total == 0


def test_password_and_token_via_soap(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    _logs_in_and_reads(connector, box)
    assert connector.logins == 1
    assert connector.meter.by_endpoint["POST /services/Soap/u/{version}"] == 1


def test_oauth_password(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box, "oauth_password"))
    _logs_in_and_reads(connector, box)
    assert connector.meter.by_endpoint["POST /services/oauth2/token"] == 1


@pytest.mark.parametrize("from_file", [False, True])
def test_jwt_bearer_with_a_generated_key(box: Sandbox, tmp_path: Path, from_file: bool) -> None:
    private, public = _private_key_pem()
    box.salesforce.jwt_public_key = public
    if from_file:
        key_file = tmp_path / "server.key"
        key_file.write_text(private)
        chosen = settings(box, "jwt", private_key_file=str(key_file))
    else:
        chosen = settings(box, "jwt", private_key=private)
    connector = SalesforceConnector(chosen)
    _logs_in_and_reads(connector, box)
    assert connector.meter.by_endpoint["POST /services/oauth2/token"] == 1


def test_jwt_signed_by_another_key_is_refused(box: Sandbox) -> None:
    _, public = _private_key_pem()
    other_private, _ = _private_key_pem()
    box.salesforce.jwt_public_key = public
    connector = SalesforceConnector(settings(box, "jwt", private_key=other_private))
    with pytest.raises(AuthError, match="private_key") as caught:
        connector.connect()
    assert other_private not in str(caught.value)


def test_jwt_with_a_broken_key_is_a_config_error(box: Sandbox, tmp_path: Path) -> None:
    connector = SalesforceConnector(settings(box, "jwt", private_key="not a key"))
    with pytest.raises(ConfigError, match="private_key is not a usable RSA"):
        connector.connect()
    missing = SalesforceConnector(
        settings(box, "jwt", private_key_file=str(tmp_path / "absent.key"))
    )
    with pytest.raises(ConfigError, match="private_key_file"):
        missing.connect()


def test_client_credentials_against_my_domain(box: Sandbox) -> None:
    connector = SalesforceConnector(
        settings(box, "client_credentials", login_url=IN_PROCESS_SALESFORCE_URL)
    )
    _logs_in_and_reads(connector, box)


def test_client_credentials_needs_my_domain() -> None:
    with pytest.raises(ConfigError, match="login_url must be your org's My Domain"):
        SalesforceConnector(
            SalesforceSettings(auth="client_credentials", consumer_key="k", consumer_secret="s")
        )


def test_session_auth_uses_the_token_without_logging_in(box: Sandbox) -> None:
    connector = SalesforceConnector(
        SalesforceSettings(
            auth="session",
            instance_url=IN_PROCESS_SALESFORCE_URL,
            access_token=box.credentials.salesforce_access_token,
        )
    )
    _logs_in_and_reads(connector, box)
    assert connector.logins == 0
    assert not any("Soap" in k or "oauth2" in k for k in connector.meter.by_endpoint)


def test_wrong_password_names_the_settings_and_hides_the_secret(box: Sandbox) -> None:
    wrong = "hunter2-Wr0ng-pa$$"
    connector = SalesforceConnector(settings(box, password=wrong))
    with pytest.raises(AuthError) as caught:
        connector.connect()
    message = str(caught.value)
    assert "password" in message and "security_token" in message
    assert wrong not in message and box.credentials.salesforce_security_token not in message
    assert wrong not in repr(connector.settings)


def test_wrong_consumer_secret_oauth(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box, "oauth_password", consumer_secret="nope-secret"))
    with pytest.raises(AuthError, match="consumer_secret") as caught:
        connector.connect()
    assert "nope-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("auth", "missing", "named"),
    [
        ("password", {"security_token": None}, "security_token"),
        ("oauth_password", {"consumer_secret": None}, "consumer_secret"),
        ("jwt", {"consumer_key": None}, "consumer_key"),
        ("session", {}, "instance_url"),
    ],
)
def test_missing_settings_are_named_before_any_call(
    auth: str, missing: dict[str, object], named: str
) -> None:
    base = SalesforceSettings(
        auth=auth,  # type: ignore[arg-type]
        username="u",
        password="p",
        security_token="t",
        consumer_key="k",
        consumer_secret="s",
    )
    with pytest.raises(ConfigError, match=named):
        SalesforceConnector(replace(base, **missing))  # type: ignore[arg-type]


def test_bad_urls_and_versions_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="login_url"):
        SalesforceConnector(
            SalesforceSettings(
                auth="session", login_url="http://x", instance_url="https://a", access_token="t"
            )
        )
    with pytest.raises(ConfigError, match="api_version"):
        SalesforceConnector(
            SalesforceSettings(
                auth="session", instance_url="https://a", access_token="t", api_version="v59.0"
            )
        )


# -- over real HTTPS --------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Sandbox, str, Path]]:
    sandbox = Sandbox(issues=0, accounts=20, seed=3)
    ends = sandbox.serve(tmp_path / "tls")
    assert ends.ca_bundle is not None
    try:
        yield sandbox, ends.salesforce_url, ends.ca_bundle
    finally:
        sandbox.stop()


def test_every_login_over_https(served: tuple[Sandbox, str, Path]) -> None:
    box, url, ca = served
    private, public = _private_key_pem()
    box.salesforce.jwt_public_key = public
    for auth in ("password", "oauth_password", "jwt", "client_credentials"):
        connector = SalesforceConnector(
            settings(box, auth, login_url=url, ca_bundle=str(ca), private_key=private)
        )
        _logs_in_and_reads(connector, box)
        assert connector.instance_url == url
    session = SalesforceConnector(
        SalesforceSettings(
            auth="session",
            instance_url=url,
            ca_bundle=str(ca),
            access_token=box.credentials.salesforce_access_token,
        )
    )
    _logs_in_and_reads(session, box)


def test_wrong_ca_over_https_is_unreachable_naming_ca_bundle(
    served: tuple[Sandbox, str, Path], tmp_path: Path
) -> None:
    box, url, _ = served
    other_ca = make_tls(tmp_path / "other").ca_path
    connector = SalesforceConnector(settings(box, login_url=url, ca_bundle=str(other_ca)))
    with pytest.raises(UnreachableError) as caught:
        connector.connect()
    message = str(caught.value)
    assert "ca_bundle" in message and str(other_ca) in message and url in message
    assert connector.meter.total == 1  # TLS failures are not retried


def test_nobody_listening_is_unreachable(tls_free_port: int) -> None:
    sleeps: list[float] = []
    connector = SalesforceConnector(
        SalesforceSettings(
            auth="session",
            instance_url=f"https://127.0.0.1:{tls_free_port}",
            access_token="t",
            timeout=5,
        ),
        sleep=sleeps.append,
    )
    with pytest.raises(UnreachableError, match=r"\(connection refused; 5 attempts\); check "):
        connector.describe("Account")
    assert len(sleeps) == connector.retry.attempts - 1


@pytest.fixture
def tls_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
