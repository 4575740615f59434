"""API authentication for raters: ``Authorization: Bearer <token>``."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.authentication import CSRFCheck

from annotation.models import hash_token
from annotation.rating import hot_path


class RaterTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("the rater token is not valid text") from None
        rater = hot_path.rater_for_token(hash_token(token))  # the rater and their study, one narrow query
        if rater is None:
            raise exceptions.AuthenticationFailed("unknown rater token")
        return rater, token

    def authenticate_header(self, request):
        return self.keyword


def session_key(study_slug: str) -> str:
    return f"pipal-rater:{study_slug}"


class RaterSessionAuthentication(authentication.BaseAuthentication):
    """The rater pages' own session: the join form stores the rater id per
    study. Unsafe methods must carry the CSRF token, as for any session."""

    def authenticate(self, request):
        slug = (request.parser_context or {}).get("kwargs", {}).get("slug")
        rater_id = request._request.session.get(session_key(slug)) if slug else None
        if rater_id is None:
            return None
        rater = hot_path.rater_for_session(rater_id, slug)
        if rater is None:
            return None
        self._enforce_csrf(request)
        return rater, None

    @staticmethod
    def _enforce_csrf(request):
        def no_view(request):
            return None

        check = CSRFCheck(no_view)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF failed: {reason}")


class RaterTokenScheme(OpenApiAuthenticationExtension):
    """Documents the rater token in the OpenAPI schema as an HTTP bearer scheme."""

    target_class = RaterTokenAuthentication
    name = "raterToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The token returned when joining a study"}


class RaterSessionScheme(OpenApiAuthenticationExtension):
    """Documents the rater pages' session cookie (CSRF token required on POST)."""

    target_class = RaterSessionAuthentication
    name = "raterSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
