"""Request-level guards that must act before any view reads a body or after any view fails."""

import logging

from django.conf import settings
from django.http import HttpResponse

from core.errors import error_response, is_api_path
from core.uploads import takes_files

logger = logging.getLogger("django.request")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _content_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class RequestBodyLimitMiddleware:
    """Refuse a body larger than its route allows (413) before anything reads it. The API
    answers in its error shape (and takes JSON only: DRF refuses anything else with 415).

    Limits: the API ``PIPAL_MAX_API_BODY_BYTES`` (small JSON bodies); page forms
    ``PIPAL_MAX_FORM_BODY_BYTES``; the upload pages named in ``PIPAL_UPLOAD_URL_NAMES``
    the image limit plus a form. The size comes from Content-Length, which WSGI servers
    also cap the read at (a chunked body without one reads as empty)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in _BODY_METHODS:
            refused = self._refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refusal(self, request):
        size = _content_length(request)
        api = is_api_path(request.path_info)
        if takes_files(request.path_info):
            # Upload routes (the admin's and the owner API's reference upload) take one image.
            limit = settings.PIPAL_MAX_IMAGE_BYTES + settings.PIPAL_MAX_FORM_BODY_BYTES
        elif api:
            limit = settings.PIPAL_MAX_API_BODY_BYTES
        else:
            limit = settings.PIPAL_MAX_FORM_BODY_BYTES
        if size <= limit:
            return None
        message = f"the request body ({size} bytes) is over this address's limit of {limit} bytes"
        if api:
            return error_response(413, "too_large", message)
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


class ApiServerErrorMiddleware:
    """An unexpected exception under /api/ answers 500 in the error shape (never an HTML page),
    logged with its traceback as Django logs any server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_api_path(request.path_info):
            return None
        logger.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"request": request})
        return error_response(500, "server_error", "the server failed to answer this request; it has been logged")
