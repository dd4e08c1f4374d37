"""The one error body of every 4xx/5xx, in a module of its own so middleware and routes share it without cycles."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from qa import request_context
from qa.schemas import ErrorOut


def error_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The body names the request (``request_id``, as in ``X-Request-ID``), so a report can be found in the log."""
    body = ErrorOut(detail=detail, errors=errors or [], request_id=request_context.current())
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)
