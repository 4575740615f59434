"""The API's one error shape, for code outside DRF's exception handler (middleware, URL fallbacks).

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
