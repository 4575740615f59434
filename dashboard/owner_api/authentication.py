"""The owner API's credentials: ``Authorization: Token <secret>`` (an owner token)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from annotation.models import Rater, hash_token
from dashboard.models import OwnerToken
from dashboard.owner_api.tokens import token_for_secret, token_mark_used

RATER_REFUSAL = "a rater token does not open the owner API: send an owner token as 'Authorization: Token <secret>'"


class OwnerTokenAuthentication(authentication.BaseAuthentication):
    """An owner token: unknown or revoked is 401; a rater's token sent here is 403."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            self._refuse_rater(header)
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <secret>'")
        try:
            secret = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("the owner token is not valid text") from None
        token = token_for_secret(secret)
        if token is None:
            if _is_rater_token(secret):
                raise exceptions.PermissionDenied(RATER_REFUSAL)
            raise exceptions.AuthenticationFailed("unknown owner token")
        if token.revoked:
            raise exceptions.AuthenticationFailed(f"owner token {token.pk} was revoked")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("the owner token's user is inactive")
        token_mark_used(token)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _refuse_rater(header: list[bytes]) -> None:
        """The rater API's scheme: a real rater token is 403 here, anything else 401."""
        try:
            secret = header[1].decode() if len(header) == 2 else ""
        except UnicodeError:
            secret = ""
        if secret and _is_rater_token(secret):
            raise exceptions.PermissionDenied(RATER_REFUSAL)
        raise exceptions.AuthenticationFailed("the owner API takes 'Authorization: Token <secret>'")


def _is_rater_token(secret: str) -> bool:
    return Rater.objects.filter(token_hash=hash_token(secret)).exists()


class HasOwnerToken(BasePermission):
    """The request carries an owner token (without credentials: 401)."""

    message = "an owner token is required: send 'Authorization: Token <secret>'"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, OwnerToken)


class OwnerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the owner token in the OpenAPI schema."""

    target_class = OwnerTokenAuthentication
    name = "ownerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An owner token, sent as 'Token <secret>' (manage.py owner_token create)",
        }
