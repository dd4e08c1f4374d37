"""`qa serve`'s logging: the text lines it always wrote, or one JSON object a line (QA_LOG_FORMAT=json).

Either way every record written while a request is served carries its id (``record.request_id``, from
qa.request_context), and the JSON lines show it: a log shipper can then join a request's lines, uvicorn's
access line included, with the ``request_id`` of the error body its client saw.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from qa import request_context

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")  # uvicorn.access's message arguments


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` (None outside a request); it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_context.current()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and request_id when there is one.

    uvicorn's access line also gets its parts as fields (client, method, path, http_version, status), so
    nobody has to parse the message back.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_context.current()
        if request_id:
            entry["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            entry.update(zip(_ACCESS_FIELDS, record.args))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that sends every logger, uvicorn's too, through one JSON handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["json"]},
        # uvicorn's own loggers keep no handlers of their own: their records reach the root's JSON handler
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(log_format: str) -> dict[str, Any] | None:
    """Set up logging for ``qa serve``; returns the ``log_config`` to give uvicorn (None: leave it as set here)."""
    if log_format == "json":
        logging.config.dictConfig(json_config())
        logging.captureWarnings(True)  # a library's warnings.warn() is a JSON line too
        return None
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG  # uvicorn's own text lines, as before
