"""Prefect's run loggers, told that a DegaeError is the user's to fix, not a crash.

Prefect logs the exception that ends a flow or task run with its traceback. The errors degae
raises on purpose (`DegaeError`: bad input, an unknown ID, a disk that refused a write) carry
one line that says what to fix, which the traceback only buries, in the terminal and in the
Prefect UI alike. For those, this filter keeps the log line and drops the traceback; every other
exception keeps its traceback.
"""

from __future__ import annotations

import logging

from degae_tools.errors import DegaeError

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class DegaeErrorsWithoutTraceback(logging.Filter):
    """Drops the traceback of a log record whose exception is a DegaeError."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DegaeError):
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    """Add the filter to Prefect's flow- and task-run loggers (once)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DegaeErrorsWithoutTraceback) for f in logger.filters):
            logger.addFilter(DegaeErrorsWithoutTraceback())
