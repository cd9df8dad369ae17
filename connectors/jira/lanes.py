"""A few calls to one Jira site in flight at once, where latency dominates.

A ``jira.JIRA`` session toggles its retries per call, so two threads must not share one:
each lane has a client of its own (:meth:`JiraConnector.twin`: the same site, call meter
and pacer, so the budget and Jira's rate limits count every lane). The twins are made on
first need and closed with :meth:`Lanes.close`; a single call runs on the connector itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from connectors.jira.connector import JiraConnector

#: Calls in flight at once (Jira Cloud's per-second limits leave room for this many of
#: our calls; the pacer slows every lane down when the headers say a limit is near).
WIDTH: Final = 4

T = TypeVar("T")
R = TypeVar("R")


class Lanes:
    """Up to ``width`` calls to ``jira`` in flight, each on a client of its own."""

    def __init__(self, jira: JiraConnector, width: int = WIDTH) -> None:
        self._jira, self.width = jira, width
        self._executor: ThreadPoolExecutor | None = None
        self._free: SimpleQueue[JiraConnector] = SimpleQueue()
        self._twins: list[JiraConnector] = []

    def map(self, call: Callable[[JiraConnector, T], R], items: Sequence[T]) -> list[R]:
        """``call(client, item)`` for each item, results in the items' order. Every call
        runs to its end before the first failure is raised (no call is left running)."""
        if len(items) <= 1 or self.width <= 1:
            return [call(self._jira, item) for item in items]
        executor = self._start()

        def run(item: T) -> R:
            client = self._free.get()
            try:
                return call(client, item)
            finally:
                self._free.put(client)

        futures = [executor.submit(run, item) for item in items]
        failure: BaseException | None = None
        results: list[R] = []
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # the first one, once every call has ended
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def _start(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._twins = [self._jira.twin() for _ in range(self.width)]
            for twin in self._twins:
                self._free.put(twin)
            self._executor = ThreadPoolExecutor(self.width, thread_name_prefix="jira-lane")
        return self._executor

    def close(self) -> None:
        """Stop the threads and close the twins' sessions."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        for twin in self._twins:
            twin.close()
        self._twins = []
        self._free = SimpleQueue()

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
