"""The one error type handlers raise; the error middleware turns it into the JSON contract."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def too_large(code: str, message: str) -> ApiError:
    return ApiError(413, code, message)


def unsupported_media(message: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", message)


def unavailable(code: str, message: str, *, retry_after: float | None = None) -> ApiError:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return ApiError(503, code, message, headers=headers)
