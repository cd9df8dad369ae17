"""What a failed call's message says happened: how many attempts the request got (counted
at the transport: the ``jira`` client's own retries and ours), never "after 3 retries"
when one call was made, and a transport failure in a few plain words, never the reprs
``requests`` and urllib3 nest (``NewConnectionError("HTTPSConnection(host=...``,
``Max retries exceeded``). Sleeps patched; the sandbox in-process or on a dead port."""

from __future__ import annotations

import socket
import types
from collections.abc import Iterator
from typing import Any

import jira.resilientsession
import pytest

from connectors.exceptions import RetriableError, UnreachableError
from connectors.jira import JiraConnector
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, FIELDS, connector_for

#: What the nested reprs of requests/urllib3 look like; none belongs in a message.
RAW = ("Error(", "HTTPSConnection", "Max retries exceeded", "Caused by", "object at 0x")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(jira.resilientsession, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture
def box() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(issues=50, accounts=5, seed=9, anchor=ANCHOR)
    with sandbox.in_process() as ends:
        yield sandbox, ends.jira_url


def ready(box: tuple[Sandbox, str], **overrides: Any) -> JiraConnector:
    sandbox, url = box
    connector = connector_for(sandbox, url, **overrides)
    connector._sleep = lambda seconds: None
    connector.connect()
    connector.field_catalog()
    return connector


def fault(sandbox: Sandbox, **spec: Any) -> None:
    sandbox.jira_app.faults.add(Fault.from_json(spec))


def message(error: pytest.ExceptionInfo[Exception]) -> str:
    text = str(error.value).split(": ", 1)[1]  # without the "jira: " side prefix
    assert not any(raw in text for raw in RAW), text
    return text


def test_a_comment_put_dropped_once_says_one_attempt(
    box: tuple[Sandbox, str], sleeps: list[float]
) -> None:
    """The PUT is never re-sent blind (it may have posted the comment): one attempt, and
    the message says so instead of "did not recover after 3 retries"."""
    connector = ready(box)
    key = sorted(box[0].jira.issues)[3]
    fault(box[0], kind="drop_after", count=1, method="PUT")
    with pytest.raises(RetriableError) as caught:
        connector.update_issue(key, comments=["x [jira-crm-sync:flag:at_risk:001]"])
    text = message(caught)
    assert text.startswith(f"the connection to Jira broke while trying to update issue {key} (")
    assert "; 1 attempt, not retried)" in text
    assert "retries" not in text
    assert sleeps == []


def test_dropped_connections_say_how_many_attempts(
    box: tuple[Sandbox, str], sleeps: list[float]
) -> None:
    connector = ready(box, max_retries=2)
    fault(box[0], kind="drop", count=5, endpoint="search/jql")
    with pytest.raises(RetriableError) as caught:
        sum(len(page) for page in connector.pull_issues(FIELDS))
    text = message(caught)
    assert "the connection to Jira broke while trying to search issues (" in text
    assert "; 3 attempts)" in text  # the first and the client's two retries
    assert len(sleeps) == 2


def test_429_until_the_retries_are_spent(box: tuple[Sandbox, str], sleeps: list[float]) -> None:
    connector = ready(box)
    fault(box[0], kind="429", count=9, retry_after=1, endpoint="search/jql")
    with pytest.raises(RetriableError) as caught:
        sum(len(page) for page in connector.pull_issues(FIELDS))
    assert message(caught).startswith(
        "Jira kept answering HTTP 429 to search issues (GET /rest/api/2/search/jql; 4 attempts); "
        "the next cycle tries again (raise [jira] max_retries to wait longer)"
    )


def test_429_without_retries_says_it_was_not_retried(
    box: tuple[Sandbox, str], sleeps: list[float]
) -> None:
    connector = ready(box, max_retries=0)
    fault(box[0], kind="429", count=1, retry_after=1, endpoint="search/jql")
    with pytest.raises(RetriableError) as caught:
        sum(len(page) for page in connector.pull_issues(FIELDS))
    assert message(caught).startswith(
        "Jira answered HTTP 429 to search issues (GET /rest/api/2/search/jql; 1 attempt, not "
        "retried)"
    )
    assert sleeps == []


def test_a_5xx_our_retries_gave_up_on(box: tuple[Sandbox, str], sleeps: list[float]) -> None:
    connector = ready(box)
    fault(box[0], kind="502", count=4, endpoint="search/jql")
    with pytest.raises(RetriableError) as caught:
        sum(len(page) for page in connector.pull_issues(FIELDS))
    assert message(caught) == (
        "Jira kept answering HTTP 502 to search issues (GET /rest/api/2/search/jql; 4 attempts); "
        "the next cycle tries again"
    )


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_in_plain_words(dead_port: int, sleeps: list[float]) -> None:
    sandbox = Sandbox(issues=5, accounts=5, seed=9, anchor=ANCHOR)
    url = f"https://127.0.0.1:{dead_port}"
    with pytest.raises(UnreachableError) as caught:
        connector_for(sandbox, url).connect()
    assert message(caught).startswith(
        f"cannot reach Jira at {url} to read serverInfo (connection refused); check [jira] url"
    )


def test_salesforce_refused_connection_in_plain_words(dead_port: int) -> None:
    url = f"https://127.0.0.1:{dead_port}"
    sleeps: list[float] = []
    connector = SalesforceConnector(
        SalesforceSettings(
            auth="session", instance_url=url, access_token="00Dx!token", login_url=url
        ),
        sleep=sleeps.append,
    )
    with pytest.raises(UnreachableError) as caught:
        sum(len(page) for page in connector.pull_accounts())
    assert message(caught) == (
        f"cannot reach Salesforce at {url} (connection refused; 5 attempts); check "
        "[crm.salesforce] login_url and instance_url, and the network or proxy"
    )
    assert len(sleeps) == 4
