"""OpenAPI post-processing: every operation documents the errors any API path can answer."""

ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
# status -> (when, for which operations)
COMMON_ERRORS = {
    "405": "The method is not allowed on this path",
    "500": "The server failed (logged); the body is in the error shape",
}
BODY_ERRORS = {
    "413": "The request body is over the API's limit (PIPAL_MAX_API_BODY_BYTES)",
    "415": "The request body is not JSON (Content-Type: application/json)",
}
NOT_FOUND = "No such study or path"
ERROR_COMPONENT = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def document_common_errors(result, generator, request, public):
    """drf-spectacular hook: add 404/405/500 to every operation and 413/415 to those with a body."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_COMPONENT)
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            responses = operation.setdefault("responses", {})
            added = {"404": NOT_FOUND, **COMMON_ERRORS}
            if method in ("post", "put", "patch"):
                added.update(BODY_ERRORS)
            for status, description in added.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
                )
    return result
