"""API errors: every failure answers ``{code, message, retryable}`` with a stable code, never a trace."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kis.logs import get_logger

log = get_logger("kis.gateway")


class FastJSONResponse(JSONResponse):
    """JSON via orjson: the quote path is hot."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retryable: bool = False,
                 retry_after: int | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.extra = extra or {}

    def response(self) -> FastJSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return FastJSONResponse({"code": self.code, "message": self.message, "retryable": self.retryable,
                               **self.extra}, status_code=self.status, headers=headers)


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHORIZED", 403: "FORBIDDEN"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> FastJSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> FastJSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return ApiError(422, "INVALID_REQUEST", f"{where}: {first.get('msg', 'invalid')}".strip(": ")).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return ApiError(exc.status_code, code, str(exc.detail)).response()

    async def _storage(request: Request, exc: Exception) -> FastJSONResponse:
        # The database is down, locked or out of connections. Whatever was being written either committed
        # or not as a whole; a retry with the same Idempotency-Key is answered from whatever did commit.
        log.error("storage_unavailable", path=request.url.path, error=type(exc).__name__)
        return ApiError(503, "STORAGE_UNAVAILABLE", "the gateway's database is unavailable; retry",
                        retryable=True).response()

    for storage_error in (OperationalError, InterfaceError, SqlTimeoutError):
        app.add_exception_handler(storage_error, _storage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> FastJSONResponse:
        log.error("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return ApiError(500, "INTERNAL_ERROR", "internal error; see the gateway log", retryable=True).response()
