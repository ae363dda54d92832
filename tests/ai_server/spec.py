"""Validate JSON bodies against the schemas in ai_server/openapi.yaml."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).resolve().parents[2] / "ai_server" / "openapi.yaml"


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def assert_schema(name: str, body: Any) -> None:
    """Fail with every violation when `body` does not match components/schemas/<name>."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec()["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
