"""Every JSON response in the OpenAPI schema is typed (generated clients need more than `object`)."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator


def _untyped(schema: dict, components: dict) -> bool:
    if "$ref" in schema:
        return _untyped(components[schema["$ref"].split("/")[-1]], components)
    if schema.get("type") == "array":
        return _untyped(schema.get("items", {}), components)
    if "oneOf" in schema or "allOf" in schema or "anyOf" in schema:
        return False
    if schema.get("type") == "object" and not schema.get("properties"):
        # A map is typed when its values are (DictField); `dict` gives {} or nothing.
        return schema.get("additionalProperties") in (None, {}, True)
    return False


@pytest.mark.django_db
def test_it_types_every_json_response_in_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    untyped = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            for code, response in op.get("responses", {}).items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and body is not None and _untyped(body, components):
                    untyped.append(f"{method.upper()} {path} {code}")
    assert not untyped, "responses typed only as an object: " + ", ".join(untyped)
