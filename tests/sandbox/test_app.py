"""The sandbox transport core: routing, stats, faults, latency and the control API, on
both transports (in-process through ``responses`` and over real HTTPS, see
tests/sandbox/conftest.py), with the real ``requests``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse, compile_template
from tests.sandbox.conftest import Transport


class EchoBackend:
    """A minimal backend: one read route, one write route, a counter to reset."""

    def __init__(self) -> None:
        self.router = Router()
        self.items: dict[str, str] = {}
        self.router.add("GET", "/things/{name}", self.get)
        self.router.add("PUT", "/things/{name}", self.put)
        self.router.add("POST", "/search", self.get_all, write=False)

    def get(self, request: SandboxRequest) -> SandboxResponse:
        name = request.path_params["name"]
        if name not in self.items:
            return self.error(404, f"no {name}")
        return SandboxResponse.json({"name": name, "value": self.items[name]})

    def put(self, request: SandboxRequest) -> SandboxResponse:
        self.items[request.path_params["name"]] = request.json()["value"]
        return SandboxResponse.empty()

    def get_all(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse.json(sorted(self.items))

    def reset(self) -> None:
        self.items.clear()

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        return SandboxResponse.json({"errorMessages": [message]}, status=status)

    def expire_sessions(self) -> SandboxResponse:
        return self.error(401, "expired")

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        return None

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        response.headers["X-Seen"] = "1"


BASE = "https://echo.test"


@pytest.fixture
def http(transport: Transport) -> Iterator[requests.Session]:
    """A session to an echo app mounted at BASE on each transport."""
    app = SandboxApp(EchoBackend())
    app.sleep = lambda seconds: None
    with transport.mount(app, BASE):
        yield requests.Session()


def test_templates_match_whole_segments() -> None:
    regex = compile_template("/rest/api/2/issue/{key}/properties/{prop}")
    found = regex.match("/rest/api/2/issue/AB-1/properties/x.y")
    assert found is not None and found.groupdict() == {"key": "AB-1", "prop": "x.y"}
    assert regex.match("/rest/api/2/issue/AB-1/x/properties/y") is None
    tail = compile_template("/services/data/{rest:path}")
    tail_match = tail.match("/services/data/v59.0/query")
    assert tail_match is not None and tail_match.group("rest") == "v59.0/query"


def test_routes_stats_and_control(http: requests.Session) -> None:
    assert http.put(f"{BASE}/things/a", json={"value": "甲"}).status_code == 204
    got = http.get(f"{BASE}/things/a")
    assert got.json() == {"name": "a", "value": "甲"}
    assert got.headers["X-Seen"] == "1"
    assert http.get(f"{BASE}/things/missing").status_code == 404
    assert http.post(f"{BASE}/search").json() == ["a"]
    assert http.delete(f"{BASE}/things/a").status_code == 405
    assert http.get(f"{BASE}/nowhere").status_code == 404

    stats = http.get(f"{BASE}/_sandbox/stats").json()
    assert stats == {
        "total": 4,
        "reads": 3,
        "writes": 1,
        "by_endpoint": {"GET /things/{name}": 2, "POST /search": 1, "PUT /things/{name}": 1},
    }
    assert http.post(f"{BASE}/_sandbox/stats/reset").json()["total"] == 0
    assert http.post(f"{BASE}/_sandbox/reset").json() == {"reset": True}
    assert http.get(f"{BASE}/things/a").status_code == 404


def test_counted_faults_apply_to_the_next_calls_only(
    http: requests.Session,
) -> None:
    http.put(f"{BASE}/things/a", json={"value": "1"})
    created = http.post(
        f"{BASE}/_sandbox/faults",
        json=[{"kind": "429", "count": 2, "retry_after": 7, "endpoint": "/things/"}],
    )
    assert created.status_code == 201
    first = http.get(f"{BASE}/things/a")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert http.post(f"{BASE}/search").status_code == 200  # endpoint filter: not affected
    assert http.get(f"{BASE}/things/a").status_code == 429
    assert http.get(f"{BASE}/things/a").status_code == 200
    assert http.get(f"{BASE}/_sandbox/faults").json() == {"faults": [], "fired": 2}


def test_server_errors_and_expired_sessions(
    http: requests.Session,
) -> None:
    http.post(f"{BASE}/_sandbox/faults", json={"kind": "503", "count": 1})
    assert http.get(f"{BASE}/things/x").status_code == 503
    http.post(f"{BASE}/_sandbox/faults", json={"kind": "expired_session"})
    expired = http.get(f"{BASE}/things/x")
    assert expired.status_code == 401 and expired.json() == {"errorMessages": ["expired"]}


def test_dropped_connection_reaches_the_client_as_a_connection_error(
    http: requests.Session,
) -> None:
    http.post(f"{BASE}/_sandbox/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{BASE}/things/a")
    assert http.get(f"{BASE}/things/a").status_code == 404  # the next call is served


def test_rate_faults_are_repeatable_for_a_seed(transport: Transport) -> None:
    def run() -> list[int]:
        app = SandboxApp(EchoBackend(), seed=42)
        with transport.mount(app, BASE):
            requests.post(f"{BASE}/_sandbox/faults", json={"kind": "500", "rate": 0.3})
            return [requests.get(f"{BASE}/things/a").status_code for _ in range(40)]

    first = run()
    assert first == run()
    assert 0 < first.count(500) < 40


def test_latency_and_slow_faults_sleep_per_call(transport: Transport) -> None:
    slept: list[float] = []
    app = SandboxApp(EchoBackend(), latency_ms=25)
    app.sleep = slept.append
    with transport.mount(app, BASE):
        requests.get(f"{BASE}/things/a")
        requests.post(f"{BASE}/_sandbox/faults", json={"kind": "slow", "delay_ms": 400})
        requests.get(f"{BASE}/things/a")
        requests.get(f"{BASE}/_sandbox/stats")  # the control API has no latency
    assert slept == [0.025, 0.025, 0.4]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"kind": "418"}, "unknown fault kind"),
        ({"kind": "500", "count": 0}, "'count' must be a positive integer"),
        ({"kind": "500", "rate": 1.5}, "'rate' must be a number in (0, 1]"),
        ({"kind": "429", "retry_after": -1}, "'retry_after'"),
        ("nonsense", "a fault is a JSON object"),
    ],
)
def test_bad_fault_requests_are_refused(
    transport: Transport, payload: object, message: str
) -> None:
    app = SandboxApp(EchoBackend())
    with transport.mount(app, BASE):
        answer = requests.post(f"{BASE}/_sandbox/faults", json=payload)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_malformed_json_body_gets_the_vendor_error_shape(transport: Transport) -> None:
    app = SandboxApp(EchoBackend())
    with transport.mount(app, BASE):
        answer = requests.put(f"{BASE}/things/a", data=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["errorMessages"][0].startswith("Malformed JSON body")


def test_path_parameters_are_decoded_exactly_once(
    http: requests.Session,
) -> None:
    for raw, decoded in (("a%2Fb", "a/b"), ("100%2525", "100%25"), ("%E7%94%B2", "甲")):
        assert http.put(f"{BASE}/things/{raw}", json={"value": decoded}).status_code == 204
        assert http.get(f"{BASE}/things/{raw}").json()["name"] == decoded
