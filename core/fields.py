"""Serializer fields that take exactly the JSON type the schema documents.

DRF's CharField turns 0 into "0" and IntegerField takes "900"; a client that
sends the wrong type has a bug, and the schema promises a 400 for it.
"""

from django.core.validators import RegexValidator
from rest_framework import serializers

# DRF refuses NUL in every CharField (PostgreSQL text cannot hold it); this validator says so in the
# schema as a pattern, so clients and fuzzers know the rule before they meet the 400.
NO_NUL = RegexValidator(r"^[^\x00]*$", message="Null characters are not allowed.")


class StrictCharField(serializers.CharField):
    """A JSON string without NUL characters, nothing else."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(NO_NUL)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a string, a float or a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of the documented strings."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number (an integer is a number too; not a string or a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false (not "yes", 1 or "true")."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class FieldSet:
    """A serializer's fields built once per process and used to validate request data, without
    DRF's deep copy of every field on each serializer instance (the vote path's largest CPU cost
    after its SQL). The fields are stateless in validation; the serializer class remains the
    schema. Same rules, messages and error shape as ``serializer.is_valid(raise_exception=True)``."""

    def __init__(self, serializer_class):
        self.serializer_class = serializer_class
        self.fields = [field for field in serializer_class().fields.values() if not field.read_only]

    def validate(self, data) -> dict:
        if not isinstance(data, dict):
            message = f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
            raise serializers.ValidationError({"non_field_errors": [message]})
        values, errors = {}, {}
        for field in self.fields:
            try:
                value = field.run_validation(field.get_value(data))
            except serializers.ValidationError as error:
                errors[field.field_name] = error.detail
            except serializers.SkipField:
                continue
            else:
                values[field.source] = value
        if errors:
            raise serializers.ValidationError(errors)
        return values
