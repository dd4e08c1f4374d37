"""The one error body of every 4xx/5xx, in a module of its own so middleware and routes share it without cycles."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from qa.schemas import ErrorOut


def error_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(ErrorOut(detail=detail, errors=errors or []).model_dump(), status_code=status, headers=headers)
