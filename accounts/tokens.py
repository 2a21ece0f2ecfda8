"""Refresh tokens bound to the user's password and to the expiry of the login they came from.

API.md: after a password change every refresh token of the user stops working, and the access
tokens issued before it within 60 seconds; rotation never stretches a session past
JWT_REFRESH_DAYS from the login. Each token carries the user's `password_version` (claim `pwv`),
which a password change bumps (accounts.models.User.save). A token without the claim was issued
before there were versions and counts as version 0, the version of a user whose password never
changed since.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User

# The name of a token claim (the user's password version), not a password.
PASSWORD_VERSION_CLAIM = "pwv"  # nosec B105
PASSWORD_CHANGED = _("Token was issued before the user's password changed.")


class SessionRefreshToken(RefreshToken):
    """simplejwt's rotating, blacklisted refresh token, revoked by a password change, never extended."""

    @classmethod
    def for_user(cls, user: User) -> "SessionRefreshToken":
        token = super().for_user(user)
        token[PASSWORD_VERSION_CLAIM] = user.password_version
        return token

    def set_exp(self, claim: str = "exp", from_time=None, lifetime=None) -> None:
        # simplejwt's rotation calls set_exp() with no arguments to give the new token a full
        # lifetime from now; the session keeps the expiry its login gave it instead. A new token
        # (from the login) sets its expiry with explicit arguments.
        if claim == "exp" and claim in self.payload and from_time is None and lifetime is None:
            return
        super().set_exp(claim, from_time, lifetime)

    def verify(self) -> None:
        """Verify as simplejwt does (signature, expiry, blacklist), then against the user's password."""
        super().verify()
        user_id = self.payload.get(api_settings.USER_ID_CLAIM)
        # A deleted user is refused by the serializer's own lookup (401 no_active_account).
        version = User.objects.filter(pk=user_id).values_list("password_version", flat=True).first()
        if version is not None and self.payload.get(PASSWORD_VERSION_CLAIM, 0) != version:
            raise TokenError(PASSWORD_CHANGED)

    @property
    def access_token(self) -> AccessToken:
        """An access token that ends no later than the session does."""
        access = super().access_token
        access["exp"] = min(access["exp"], self["exp"])
        return access
