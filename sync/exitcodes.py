"""Exit codes for cron and systemd (SPEC section 4), and :func:`exit_for`, the one place an
exception becomes one."""

from __future__ import annotations

import sys
from enum import IntEnum

from connectors.exceptions import BudgetExhausted, ConfigError, ConnectorError


class ExitCode(IntEnum):
    """What a non-zero exit tells the scheduler."""

    OK = 0
    PARKED = 1  # the cycle finished but some records failed and were parked for retry
    USAGE = 2  # usage or config error
    REMOTE = 3  # cannot reach or authenticate to a remote
    LOCKED = 4  # another run holds the lock
    INTERNAL = 5  # internal error


#: The errors a person fixes in the config, the command line or the state store's place
#: (exit 2) that the sync modules define, as (module, class). They are looked up among the
#: modules already imported, never imported here: an exception is raised only by code that
#: was imported, so a module not imported yet defined no class ``exc`` can be, and a
#: failing command does not pay, as it exits, for modules it never used.
_USAGE_ERRORS = (
    ("sync.config", "ConfigFileError"),
    ("sync.store.db", "StoreError"),
    ("sync.schedule", "ScheduleError"),
    ("sync.serve", "ListenError"),
    ("sync.serve", "NoConnections"),
    ("sync.report", "ReportError"),
    ("sync.init_config", "InitError"),
    ("sync.connections", "ConnectionsError"),
)


def _defined(module: str, name: str) -> type[BaseException] | None:
    """The exception class ``module.name`` if that module is imported, else None."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = _defined(module, name)
    return cls is not None and isinstance(exc, cls)


def exit_for(exc: BaseException, *, whole_read: bool = False) -> ExitCode:
    """The exit code that ends a command which stopped on ``exc`` (SPEC section 4).

    - 4 (LOCKED): :class:`~sync.store.LockHeld`: another run or worker has the store,
      the run lock, or a serve job holding it shared (``sync.cycle.ownership``).
    - 2 (USAGE): a problem a person fixes where the config or the command line says:
      a config the remote does not match (``ConfigError``, ``QueryError``), a config file
      that is missing or invalid, a state store that cannot be opened or written, a
      schedule or listen address that cannot be used, a report or ``init`` that cannot be
      made as asked.
    - 3 (REMOTE): a remote that cannot be reached, refuses our credentials, kept failing
      past the retries, or answered what we do not expect (``AuthError``,
      ``UnreachableError``, ``RetriableError``, ``RemoteError``, ``RejectedRecord`` and any
      other ``ConnectorError``).
    - ``BudgetExhausted``, an API budget spent: for a cycle (``run``, ``serve``) a clean stop,
      0, because SPEC section 7 says a cycle "stops cleanly before the configured budget,
      to resume next cycle": what was done is committed and the next cycle goes on from
      there. With ``whole_read`` (``reconcile``) it is 3: reconcile's job is one complete
      comparison of both sides (SPEC section 4: "full comparison"), and there is no next
      cycle to resume it; stopped before both sides were read it has no answer to give, so
      it exits as a command that could not read a remote, and cron hears that it failed.
    - The demo's own error (``DemoError``) carries the code of the step that failed.
    - 5 (INTERNAL): anything else, a bug (``sync.cli.common.guarded`` says so in one line).
    """
    if _is(exc, "sync.demo", "DemoError"):
        return ExitCode(getattr(exc, "exit_code", ExitCode.INTERNAL))
    if _is(exc, "sync.store.locks", "LockHeld"):
        return ExitCode.LOCKED
    if isinstance(exc, BudgetExhausted):
        return ExitCode.REMOTE if whole_read else ExitCode.OK
    if isinstance(exc, ConfigError) or any(_is(exc, *where) for where in _USAGE_ERRORS):
        return ExitCode.USAGE
    if isinstance(exc, ConnectorError):
        return ExitCode.REMOTE
    return ExitCode.INTERNAL
