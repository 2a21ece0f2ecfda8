from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer

from accounts.models import User
from accounts.services import refresh_token_locked
from accounts.tokens import SessionRefreshToken
from fastticket.serializers import StrictSerializer

_DATETIME = serializers.DateTimeField()


class UserSerializer(serializers.ModelSerializer):
    """A user; its fields describe it (schema, browsable API), to_representation renders it.

    A ModelSerializer builds its fields from the model for every instance, which cost more than
    the rest of an `auth/me` answer (tests/accounts/test_me.py keeps the two equal).
    """

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance: User) -> dict:
        return {
            "id": str(instance.pk),
            "username": instance.username,
            "email": instance.email,
            "is_staff": instance.is_staff,
            "created_at": _DATETIME.to_representation(instance.created_at),
        }


class UsernameField(serializers.CharField):
    """A username, NFKC-normalised before its length and characters are checked (as Django's form field)."""

    def to_internal_value(self, data):
        return User.normalize_username(super().to_internal_value(data))


class SignupSerializer(StrictSerializer):
    username = UsernameField(max_length=150, validators=[UnicodeUsernameValidator()])
    # Not trimmed: " carol@example.com" is not the address the schema's `format: email` allows.
    email = serializers.EmailField(max_length=254, trim_whitespace=False)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class LogoutSerializer(StrictSerializer):
    refresh = serializers.CharField()


class PasswordChangeSerializer(StrictSerializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LoginSerializer(StrictSerializer, TokenObtainPairSerializer):
    """simplejwt's login serializer, refusing unknown fields, issuing session-bound tokens."""

    token_class = SessionRefreshToken


class RefreshSerializer(StrictSerializer, TokenRefreshSerializer):
    """simplejwt's refresh serializer (rotating, blacklisting), refusing unknown fields.

    Its token class refuses a token issued before a password change and keeps the login's expiry.
    """

    token_class = SessionRefreshToken

    def validate(self, attrs):
        with refresh_token_locked(attrs["refresh"]):
            try:
                return super().validate(attrs)
            except User.DoesNotExist as exc:
                # simplejwt looks the token's user up with .get(): a deleted user is a 401, not a 404.
                raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from exc
