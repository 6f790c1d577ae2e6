"""The OpenAPI description: valid, served, and in step with the README and the templates' fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from api.schema import DESCRIPTION
from tests.monitoring.test_contract import HEALTH, PERFORMANCE, RESOURCE_POOL

README = Path(__file__).resolve().parents[2] / "README.md"
# JSON types as the contract names them, and as JSON Schema does.
SCHEMA_TYPES = {"number": {"number", "integer"}, "string": {"string"}, "null": {"null"}}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(DESCRIPTION.read_text())


def readme_http_table(column: int) -> list[str]:
    """One column of the README's HTTP table: 1 method and path, 2 success, 3 errors."""
    text = README.read_text()
    table = text[text.index("## HTTP") :].split("\n\n")[1]
    return [line.split("|")[column] for line in table.splitlines()[2:]]


def schema_ref(ref: str) -> list[str]:
    return ref.removeprefix("#/").split("/")


def follow(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` points at (or `schema` itself)."""
    while "$ref" in schema:
        target: Any = spec
        for name in schema_ref(schema["$ref"]):
            target = target[name]
        schema = target
    return schema


def schema_at(spec: dict[str, Any], root: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of the field at a contract path (`a.b`, `list[].field`)."""
    schema = follow(spec, root)
    for name in path.split("."):
        each = name.endswith("[]")
        schema = follow(spec, schema["properties"][name.removesuffix("[]")])
        if each:
            schema = follow(spec, schema["items"])
    return schema


def json_types(schema: dict[str, Any]) -> set[str]:
    declared = schema["type"]
    return set(declared if isinstance(declared, list) else [declared])


def test_the_description_is_valid_openapi(spec):
    validate(spec)


def test_the_description_is_served_at_api_schema(client):
    response = client.get("/api/schema")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert yaml.safe_load(response.content) == yaml.safe_load(DESCRIPTION.read_text())


def test_every_endpoint_of_the_readme_http_table_is_described(spec):
    described = {
        (method.upper(), path) for path, item in spec["paths"].items() for method in item
    } - {("PARAMETERS", path) for path in spec["paths"]}
    listed = set()
    for cell in readme_http_table(1):
        for method, path in re.findall(r"`(GET|POST) (/[^` ]*)", cell):
            listed.add((method, path.replace("<id>", "{operation_id}")))

    assert listed
    assert {pair for pair in listed if pair[1].startswith(("/api/", "/metrics"))} <= described


def test_every_error_code_of_the_readme_http_table_is_named(spec):
    text = DESCRIPTION.read_text()
    errors = "".join(readme_http_table(3))
    codes = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", errors)) - {"active_operations"}

    assert "rate_limit_unavailable" in codes
    assert {code for code in codes if f"`{code}`" not in text} == set()


@pytest.mark.parametrize(
    ("path", "contract"),
    [
        ("/api/health", HEALTH),
        ("/api/performance", PERFORMANCE),
        ("/api/resource-pool/metrics", RESOURCE_POOL),
    ],
)
def test_the_templates_report_fields_are_described_with_their_json_types(spec, path, contract):
    root = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    wrong = []
    for field, expected in contract.items():
        schema = schema_at(spec, root, field)
        allowed = set().union(*(SCHEMA_TYPES.get(name, {name}) for name in expected.split("|")))
        if not json_types(schema) <= allowed:
            wrong.append(f"{field}: {schema['type']}, expected {expected}")
        above, _, name = field.rpartition(".")
        parent = schema_at(spec, root, above) if above else follow(spec, root)
        if name.removesuffix("[]") not in parent.get("required", []):
            wrong.append(f"{field}: not required")

    assert wrong == []
