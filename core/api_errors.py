"""One error format for the whole API.

Every refusal has the shape
``{"error": {"code": "...", "message": "...", "fields": {...}}}``: ``code`` is
stable for programs, ``message`` names what was wrong for people, ``fields``
(validation errors only) maps each bad field to its messages.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import ApplicationError, error_body


def _error(status_code: int, code: str, message: str, fields=None) -> Response:
    return Response(error_body(code, message, fields), status=status_code)


def _flatten_validation(detail) -> tuple[str, dict]:
    if isinstance(detail, dict):
        fields = {
            key: [str(m) for m in (value if isinstance(value, list) else [value])] for key, value in detail.items()
        }
        first_field, first_messages = next(iter(fields.items()))
        if first_field == "non_field_errors":
            return first_messages[0], fields
        return f"{first_field}: {first_messages[0]}", fields
    messages = [str(m) for m in (detail if isinstance(detail, list) else [detail])]
    return "; ".join(messages), {}


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return _error(exc.status_code, exc.code, exc.message, exc.fields)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.ValidationError):
        message, fields = _flatten_validation(exc.detail)
        return _error(exc.status_code, "invalid", message, fields)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response
