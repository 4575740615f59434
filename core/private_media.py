"""Private files (benchmark reports, exports): kept under PIPAL_PRIVATE_ROOT, never under a
public URL, and handed out only by views that have checked permission.

In production the web server sends the bytes: ``nginx`` gets an X-Accel-Redirect to an
``internal`` location, ``apache`` an X-Sendfile path; ``django`` streams the file itself.
"""

import mimetypes
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse

# Plain-text types the browser shows rather than downloads.
TEXT_SUFFIXES = (".md", ".csv", ".txt")


def private_root() -> Path:
    return Path(settings.PIPAL_PRIVATE_ROOT)


def private_path(relative: str) -> Path:
    """The file at ``relative`` under the private root; a name that would leave it is refused."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise Http404("not a private file name")
    return private_root().joinpath(*parts)


def private_file_response(relative: str) -> HttpResponse:
    """The response that delivers a private file the caller has already allowed."""
    path = private_path(relative)
    if not path.is_file():
        raise Http404(f"{relative} is gone")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.name.endswith(TEXT_SUFFIXES):
        content_type = "text/plain; charset=utf-8"
    server = settings.PIPAL_PRIVATE_MEDIA_SERVER
    if server == "django":
        return FileResponse(open(path, "rb"), content_type=content_type)
    response = HttpResponse(content_type=content_type)
    if server == "nginx":
        internal = settings.PIPAL_PRIVATE_MEDIA_INTERNAL_URL.rstrip("/") + "/"
        response["X-Accel-Redirect"] = internal + quote(PurePosixPath(relative).as_posix())
    else:  # apache (mod_xsendfile)
        response["X-Sendfile"] = str(path)
    return response
