"""Application errors and the API's one error shape.

Services raise an ``ApplicationError`` (or a subclass) when they refuse: it carries an HTTP
status for the API (``core.api_errors`` maps it to the error shape) and a message that names
what was wrong, which management commands print as is (``core.commands``). No DRF here.

``{"error": {"code": "...", "message": "...", "fields": {...}}}``: ``code`` is stable
for programs, ``message`` names what was wrong for people, ``fields`` (validation
errors only) maps each bad field to its messages.
"""

from django.http import JsonResponse


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status, headers=headers)


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class ApplicationError(Exception):
    """A refusal with a reason, raised by services and mapped to HTTP by the API."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, fields=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.fields = fields or {}


def failure_text(error: BaseException) -> str:
    """Why a background job failed, for people: a refusal's own message, else the exception's type and text."""
    return error.message if isinstance(error, ApplicationError) else f"{type(error).__name__}: {error}"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class Gone(ApplicationError):
    status_code = 410
    code = "expired"
