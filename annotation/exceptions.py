"""Application errors: what services raise when they refuse (no DRF here).

Each carries an HTTP status for the API (``api_errors`` maps them to one
error format) and a message that names what was wrong, which management
commands print as is.
"""


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


class LabelsStudy(Conflict):
    """A study whose MOS comes from imported labels: it takes no votes and has
    no judgment log to replay."""

    code = "imported_labels"
