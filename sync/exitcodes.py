"""Exit codes for cron and systemd (SPEC section 4)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a non-zero exit tells the scheduler."""

    OK = 0
    PARKED = 1  # the cycle finished but some records failed and were parked for retry
    USAGE = 2  # usage or config error
    REMOTE = 3  # cannot reach or authenticate to a remote
    LOCKED = 4  # another run holds the lock
    INTERNAL = 5  # internal error
