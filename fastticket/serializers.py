"""Serializer building blocks shared by the apps."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuse fields the endpoint does not know (400), instead of silently dropping them.

    Read-only fields the endpoint knows (e.g. `issued_count`) are still accepted and ignored.
    """

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    """A ModelSerializer that refuses unknown fields."""


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "..."}`: the shape of 403, 404, 405, 413, 422 and 429 answers."""

    detail = serializers.CharField()


class UnauthorizedSerializer(ErrorSerializer):
    """`{"detail", "code"}`: a 401."""

    code = serializers.ChoiceField(choices=["not_authenticated", "authentication_failed", "token_not_valid"])


class DomainErrorSerializer(ErrorSerializer):
    """`{"code", "detail", ...}`: a 409 or 503 business answer."""

    code = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """`{"field": ["message", ...]}`: a 400."""

    def to_representation(self, instance):
        return instance
