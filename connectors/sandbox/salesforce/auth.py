"""Logins: the OAuth token endpoint (password, refresh token, client credentials, JWT
bearer) and the SOAP ``login`` call simple-salesforce makes for username + password +
security token.

Each successful login issues a new session token; the sandbox never checks a password
against anything but the one it was built with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import jwt

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.schema import SF_API_VERSIONS

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_XML = "text/xml;charset=UTF-8"


def _oauth_error(error: str, description: str, status: int = 400) -> SandboxResponse:
    return SandboxResponse.json({"error": error, "error_description": description}, status=status)


def _basic_credentials(request: SandboxRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        key, _, secret = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key, secret


def _password_ok(backend: SalesforceBackend, password: str | None) -> bool:
    # The security token may be appended (untrusted IP) or left off (trusted IP range).
    return password in (backend.password, backend.password + backend.security_token)


def _jwt_subject(backend: SalesforceBackend, assertion: str) -> SandboxResponse | None:
    """None when the assertion is acceptable, else the OAuth error to answer."""
    try:
        if backend.jwt_public_key is not None:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                backend.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        else:
            claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return _oauth_error("invalid_grant", f"invalid assertion: {exc}")
    if claims.get("iss") != backend.consumer_key:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if claims.get("sub") != backend.username:
        return _oauth_error("invalid_grant", "user hasn't approved this consumer")
    try:
        # simple-salesforce sends ``exp`` as a string of seconds.
        expires = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        return _oauth_error("invalid_grant", "invalid assertion: no valid exp claim")
    if expires < backend.now().timestamp():
        return _oauth_error("invalid_grant", "expired authorization code")
    return None


def _token_response(
    backend: SalesforceBackend, request: SandboxRequest, scope: str | None = None
) -> SandboxResponse:
    token = backend.issue_session()
    instance = backend.instance_url or request.base_url
    identity = f"{request.base_url}/id/{backend.org_id}/{backend.user_id}"
    issued_at = str(int(backend.now().timestamp() * 1000))
    signature = base64.b64encode(
        hmac.new(
            backend.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode()
    answer = {
        "access_token": token,
        "instance_url": instance,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    }
    if scope:
        answer["scope"] = scope
    return SandboxResponse.json(answer)


def _soap_fault(code: str, message: str) -> SandboxResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return SandboxResponse.text(body, status=500, content_type=_XML)


def _soap_value(root: ElementTree.Element, name: str) -> str | None:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return element.text or ""
    return None


def register(backend: SalesforceBackend) -> None:
    """Add the login routes to ``backend.router``."""
    router = backend.router

    @router.route("POST", "/services/oauth2/token", write=False)  # a login changes no data
    def token(request: SandboxRequest) -> SandboxResponse:
        form = request.form()
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("client_id"), form.get("client_secret")) != (
                backend.consumer_key,
                backend.consumer_secret,
            ):
                return _oauth_error("invalid_client", "invalid client credentials")
            if form.get("username") != backend.username or not _password_ok(
                backend, form.get("password")
            ):
                return _oauth_error("invalid_grant", "authentication failure")
            return _token_response(backend, request)
        if grant == "client_credentials":
            pair = _basic_credentials(request) or (form.get("client_id"), form.get("client_secret"))
            if pair != (backend.consumer_key, backend.consumer_secret):
                return _oauth_error("invalid_client", "invalid client credentials")
            return _token_response(backend, request)
        if grant == "refresh_token":
            # What singer taps and airbyte log in with. The secret may be left off unless
            # the connected app requires it; a given one must match.
            secret = form.get("client_secret")
            if form.get("client_id") != backend.consumer_key or (
                secret and secret != backend.consumer_secret
            ):
                return _oauth_error("invalid_client", "invalid client credentials")
            if form.get("refresh_token") not in backend.refresh_tokens:
                return _oauth_error("invalid_grant", "expired access/refresh token")
            return _token_response(backend, request, scope="api refresh_token")
        if grant == JWT_GRANT:
            problem = _jwt_subject(backend, form.get("assertion", ""))
            return problem or _token_response(backend, request)
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    @router.route("POST", "/services/oauth2/revoke")
    def revoke(request: SandboxRequest) -> SandboxResponse:
        token = request.form().get("token", "") or request.arg("token") or ""
        backend.sessions.pop(token, None)
        backend.refresh_tokens.discard(token)  # a revoked refresh token logs in no more
        return SandboxResponse.empty(200)

    @router.route("POST", "/services/Soap/u/{version}", write=False)
    def soap_login(request: SandboxRequest) -> SandboxResponse:
        version = request.path_params["version"]
        if version not in SF_API_VERSIONS:
            return _soap_fault(
                "UNSUPPORTED_API_VERSION", f"Invalid Api version specified on URL: {version}"
            )
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            return _soap_fault("INVALID_LOGIN", "Malformed login request.")
        username, password = _soap_value(root, "username"), _soap_value(root, "password")
        if username != backend.username or not _password_ok(backend, password):
            return _soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        session = backend.issue_session()
        instance = backend.instance_url or request.base_url
        org = backend.org_id[:15]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{instance}/services/Soap/m/{version}/{org}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{instance}/services/Soap/u/{version}/{org}</serverUrl>"
            f"<sessionId>{escape(session)}</sessionId>"
            f"<userId>{backend.user_id}</userId>"
            "<userInfo>"
            f"<organizationId>{backend.org_id}</organizationId>"
            f"<userEmail>{escape(backend.username)}</userEmail>"
            f"<userName>{escape(backend.username)}</userName>"
            f"<sessionSecondsValid>7200</sessionSecondsValid>"
            "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return SandboxResponse.text(body, content_type=_XML)


__all__ = ["JWT_GRANT", "register"]
