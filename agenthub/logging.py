"""Logs to stderr, one line per event; syslog priority prefixes when journald reads them.

journald's stream transport parses a leading ``<N>`` as the priority, so
``journalctl -p err`` shows exactly the error lines. systemd sets JOURNAL_STREAM
when stderr is connected to the journal.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # A traceback spans lines; journald would log each bare line at the default priority.
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM"))


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Tornado's own access log is replaced by agenthub.access (route patterns, agent).
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
