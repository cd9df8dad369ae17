"""Log lines on stderr: text or JSON, at the level ``-v``/``-q`` ask for.

The levels, for our own loggers (``sync``, ``connectors``, ``mappings``) and for the
libraries under them (alembic, urllib3, jira, simple-salesforce):

- default: warnings and errors of both;
- ``-v``: our INFO lines too (what a cycle pulled, derived, pushed, the calls it made),
  the libraries' still only from WARNING (alembic's plugin lines and the like are noise);
- ``-vv``: everything at DEBUG, each remote call (ours) and the libraries' own lines;
- ``-q``: errors only.

``serve`` logs its start-up and one line per cycle at INFO without ``-v``
(:func:`service_logging`): a service's journal is its only output.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from sync.cli.options import GlobalOptions, LogFormat

#: The loggers of this product (``-v`` raises them alone to INFO).
OURS = ("sync", "connectors", "mappings", "jira_crm_sync")
#: The ones ``serve`` keeps at INFO without ``-v``.
SERVICE = ("sync.serve", "jira_crm_sync")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and serve's ``cycle``)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        cycle = getattr(record, "cycle", None)  # serve's line per cycle, for log queries
        if isinstance(cycle, dict):
            document["cycle"] = cycle
        if record.exc_info:  # as the text format prints it
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def setup_logging(options: GlobalOptions) -> None:
    """One stderr handler on the root logger, and the levels of the module docstring.

    Called for the group's options and again for the command's merged ones; it sets every
    level it governs each time (a test process runs many commands in a row)."""
    handler = logging.StreamHandler(sys.stderr)
    if options.log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    for name in (*OURS, *SERVICE):
        logging.getLogger(name).setLevel(logging.NOTSET)
    if options.quiet:
        root.setLevel(logging.ERROR)
    elif options.verbose >= 2:
        root.setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.WARNING)
        if options.verbose == 1:
            for name in OURS:
                logging.getLogger(name).setLevel(logging.INFO)


def service_logging(options: GlobalOptions) -> None:
    """``serve``: its start-up and a line per cycle at INFO without ``-v``; ``-q`` still
    leaves only errors, ``-v``/``-vv`` raise the level as for any command."""
    if options.quiet or options.verbose:
        return
    for name in SERVICE:  # ours only: libraries stay at WARNING
        logging.getLogger(name).setLevel(logging.INFO)
