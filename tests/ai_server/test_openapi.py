"""ai_server/openapi.yaml describes exactly the routes the app serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from ai_server.app import create_app

from .conftest import MakeSettings
from .spec import spec


def test_spec_is_valid_openapi() -> None:
    validate(spec())


def test_every_route_is_in_the_spec_and_back(make_settings: MakeSettings) -> None:
    app = create_app(make_settings())
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, item in spec()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    assert served == documented


def test_every_error_response_uses_the_error_schema() -> None:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    assert response["$ref"] in (
                        "#/components/responses/Error",
                        "#/components/responses/Unavailable",
                    ), f"{method.upper()} {path} {status}"
