"""Serializer building blocks shared by the apps."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.http import QueryDict
from rest_framework import serializers

# JSON types DRF would otherwise coerce: 0 into "0" for a string field, "5" into 5 for an integer,
# "yes" or 1 into true for a boolean.
_JSON_TYPES = (
    (serializers.CharField, "Not a valid string.", lambda value: isinstance(value, str)),
    (
        serializers.IntegerField,
        "A valid integer is required.",
        lambda value: isinstance(value, int) and not isinstance(value, bool),
    ),
    (serializers.BooleanField, "Must be a valid boolean.", lambda value: isinstance(value, bool)),
)


class StrictSerializer(serializers.Serializer):
    """Refuse fields the endpoint does not know (400), instead of silently dropping them.

    Read-only fields the endpoint knows (e.g. `issued_count`) are still accepted and ignored.
    A JSON value of the wrong type is a 400 too (form bodies, from the browsable API, are all text).
    A text's maximum length and pattern hold for the text as sent, before it is trimmed or
    normalised, as the schema says them.
    """

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            refused = {
                name: messages
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField) and not field.read_only
                for messages in [_text_as_sent_errors(field, data.get(name))]
                if messages
            }
            if refused:
                raise serializers.ValidationError(refused)
            if not isinstance(data, QueryDict):
                wrong = {
                    name: [message]
                    for name, field in self.fields.items()
                    for kind, message, is_valid in _JSON_TYPES
                    if isinstance(field, kind)
                    and not field.read_only
                    and data.get(name) is not None
                    and not is_valid(data[name])
                }
                if wrong:
                    raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


def _text_as_sent_errors(field: serializers.CharField, value) -> list[str]:
    """The messages of a text that breaks its field's maximum length or pattern before trimming.

    DRF trims whitespace (and a username is NFKC-normalised) before the field's validators run, so
    201 characters of which the first is a space would pass a 200-character limit the OpenAPI
    document promises to enforce; it is measured here as sent, and again after, as the field does.
    """
    if not isinstance(value, str):
        return []
    if field.max_length is not None and len(value) > field.max_length:
        return [field.error_messages["max_length"].format(max_length=field.max_length)]
    messages = []
    for validator in field.validators:
        if isinstance(validator, RegexValidator):
            try:
                validator(value)
            except DjangoValidationError as error:
                messages.extend(error.messages)
    return messages


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


class ApiOperationSerializer(serializers.Serializer):
    method = serializers.CharField()
    path = serializers.CharField(help_text="With `{name}` for a path parameter, as in the OpenAPI document.")
    summary = serializers.CharField()
    authentication = serializers.ChoiceField(
        choices=["none", "optional", "bearer"], help_text="`bearer`: needs `Authorization: Bearer <access token>`."
    )


class ApiIndexSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    documentation = serializers.DictField(child=serializers.URLField(), help_text="Swagger UI, ReDoc, OpenAPI.")
    health = serializers.DictField(child=serializers.URLField(), help_text="The liveness and readiness probes.")
    operations = ApiOperationSerializer(many=True)
