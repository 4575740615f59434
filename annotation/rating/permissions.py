from rest_framework.permissions import BasePermission

from annotation.models import Rater


class IsRater(BasePermission):
    """The request carries a rater's credentials (a staff session is not a rater)."""

    message = "rater credentials required: join the study and send 'Authorization: Bearer <token>'"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Rater)
