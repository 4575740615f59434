"""Fallback views of the API's URL space."""

from django.views.decorators.csrf import csrf_exempt

from core.errors import error_response


@csrf_exempt
def api_not_found(request, rest: str = ""):
    """Any path under /api/ that no endpoint matches (a bad slug included): 404 in the error shape."""
    return error_response(404, "not_found", f"no API endpoint at {request.path}")
