"""Log formatting: one line per event, tracebacks folded into that line."""

import logging


class OneLineFormatter(logging.Formatter):
    """Format a record, tracebacks included, as a single line (newlines become ' | ')."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", " | ")
