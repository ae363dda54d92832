"""The add-on's metadata against the project's own schemas, with zero findings.

`tests/ai_server/schemas/` holds JSON schemas written from the Home Assistant add-on
documentation (each names its sources): config.yaml, build.yaml, translations and repository.yaml.
On top of JSON Schema, two rules of the community add-on linter: a key set to its documented
`default` is a finding (`boot: auto` says nothing), and so is a key marked `deprecated`. The rest
checks what a schema cannot: option defaults against Supervisor's option types, translations
against the options and ports, build.yaml against the architectures, and that the hardware the
add-on asks Supervisor for is hardware the server uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon"
SCHEMAS = Path(__file__).resolve().parent / "schemas"


_NO_DEFAULT = object()


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (`1 == True` in Python, not in YAML)."""
    return type(a) is type(b) and a == b


def _properties_and_defaults(validator, properties, instance, schema) -> Iterator[ValidationError]:
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if name in instance and _same(instance[name], subschema.get("default", _NO_DEFAULT)):
                yield ValidationError(f"'{name}' should be removed, it uses a default value")
    yield from Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema
    )


def _deprecated(validator, deprecated, instance, schema) -> Iterator[ValidationError]:
    if deprecated:
        yield ValidationError(f"deprecated: {schema.get('$comment', 'remove it')}")


MetadataValidator = validators.extend(
    Draft202012Validator,
    {"properties": _properties_and_defaults, "deprecated": _deprecated},
)


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def findings(document: Any, schema_name: str) -> list[str]:
    """Every finding, as `path: message`."""
    validator = MetadataValidator(load_schema(schema_name))
    out = []
    for error in validator.iter_errors(document):
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        out.append(f"{where}: {error.message}")
    return sorted(out)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def config() -> dict[str, Any]:
    return load_yaml(ADDON / "config.yaml")


TRANSLATIONS = sorted((ADDON / "translations").glob("*.yaml"))
DOCUMENTS = [
    (ADDON / "config.yaml", "addon-config"),
    (ADDON / "build.yaml", "addon-build"),
    *[(path, "addon-translations") for path in TRANSLATIONS],
    (ROOT / "repository.yaml", "addon-repository"),
]


@pytest.mark.parametrize("name", sorted(p.name.split(".")[0] for p in SCHEMAS.glob("*.json")))
def test_schemas_are_valid(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


@pytest.mark.parametrize(
    ("path", "schema"), DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p, _ in DOCUMENTS]
)
def test_metadata_has_zero_findings(path: Path, schema: str) -> None:
    assert findings(load_yaml(path), schema) == []


def test_the_checks_find_what_they_should() -> None:
    """The schemas are not vacuous: each rule catches its case."""
    good = config()
    assert findings(good, "addon-config") == []
    cases: list[tuple[dict[str, Any], str]] = [
        ({"boot": "auto"}, "'boot' should be removed, it uses a default value"),
        ({"init": True}, "'init' should be removed, it uses a default value"),
        ({"video": False}, "'video' should be removed, it uses a default value"),
        ({"timeout": 10}, "'timeout' should be removed, it uses a default value"),
        ({"watchdog": "http://[HOST]:[PORT:8090]/health"}, "watchdog: deprecated"),
        ({"version": 1.0}, "version: 1.0 is not of type 'string'"),
        ({"arch": ["armv7"]}, "arch/0: 'armv7' is not one of"),
        ({"ports": {"8090/tcp": 0}}, "ports/8090/tcp: 0 is not valid"),
        ({"schema": {"x": "string"}}, "schema/x: 'string' is not valid"),
        ({"unknown_key": 1}, "Additional properties are not allowed ('unknown_key'"),
    ]
    for change, expected in cases:
        found = findings({**good, **change}, "addon-config")
        assert any(f.startswith(expected) or expected in f for f in found), (change, found)
    map_default = {**good, "map": [{"type": "share", "read_only": True}]}
    assert findings(map_default, "addon-config") == [
        "map/0: 'read_only' should be removed, it uses a default value"
    ]
    # Supervisor needs namespace/name: for python:3.11 it silently builds FROM its Alpine base.
    assert findings({"build_from": {"amd64": "python:3.11-slim-bookworm"}}, "addon-build")
    assert not findings({"build_from": {"amd64": "docker.io/library/python:3.11"}}, "addon-build")
    assert findings({"configuration": {"x": {"name": "X"}}}, "addon-translations") == [
        "configuration/x: 'description' is a required property"
    ]
    assert findings({"url": "x"}, "addon-repository") == [
        "(top): 'name' is a required property",
        "url: 'x' does not match '^https?://[^\\\\s/]+'",
    ]


# --- option defaults against Supervisor's option types -------------------------------------

_TYPE_RE = re.compile(
    r"^(?P<kind>bool|email|url|port|device|str|password|int|float|match|list)"
    r"(?:\((?P<args>.*)\))?(?P<optional>\?)?$"
)


def check_option(kind_spec: str, value: Any) -> str | None:
    """Why `value` is not valid for a Supervisor option type, else None (as apps/options.py)."""
    match = _TYPE_RE.match(kind_spec)
    if not match:
        return f"unknown type {kind_spec!r}"
    kind, args = match["kind"], match["args"]
    lo = hi = None
    if kind in {"str", "password", "int", "float"} and args:
        lo_text, _, hi_text = args.partition(",")
        lo = float(lo_text) if lo_text else None
        hi = float(hi_text) if hi_text else None
    if kind in {"str", "password"}:
        if not isinstance(value, str):
            return "not a string"
        number: float = len(value)
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "not an integer"
        number = value
    elif kind in {"float", "port"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "not a number"
        number = value
        lo, hi = (1, 65535) if kind == "port" else (lo, hi)
    elif kind == "bool":
        return None if isinstance(value, bool) else "not a boolean"
    elif kind == "url":
        return None if re.match(r"^https?://[^\s/]+", str(value)) else "not a URL"
    elif kind == "match":
        return None if re.match(args or "", str(value)) else f"does not match {args}"
    elif kind == "list":
        return None if str(value) in (args or "").split("|") else f"not one of {args}"
    else:
        return None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        return f"{value!r} outside {args}"
    return None


def option_errors(schema: Any, value: Any, where: str) -> list[str]:
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [
            e
            for i, item in enumerate(value)
            for e in option_errors(schema[0], item, f"{where}/{i}")
        ]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: not a dict"]
        return [
            e for k, v in value.items() for e in option_errors(schema.get(k), v, f"{where}/{k}")
        ]
    if schema is None:
        return [f"{where}: not in the schema"]
    reason = check_option(schema, value)
    return [f"{where}: {reason}"] if reason else []


def _optional(schema: Any) -> bool:
    inner = schema[0] if isinstance(schema, list) and schema else schema
    return isinstance(inner, str) and inner.endswith("?")


def test_option_defaults_are_valid_for_their_types() -> None:
    cfg = config()
    errors = [
        e
        for key, value in cfg["options"].items()
        for e in option_errors(cfg["schema"].get(key), value, key)
    ]
    assert errors == []
    # The checker itself.
    assert check_option("float(0,1)", 1.5) and check_option("list(a|b)", "c")
    assert check_option("int(1,16)", 0) and not check_option("int(1,16)", 1)
    assert check_option("str", 3) and not check_option("password?", "")


def test_required_options_have_defaults_and_optional_ones_do_not() -> None:
    """Supervisor: a schema type without `?` must be given (else the add-on does not start out of
    the box); one with `?` and a default in options is required anyway, so the `?` misleads."""
    cfg = config()
    schema, options = cfg["schema"], cfg["options"]
    assert sorted(k for k, t in schema.items() if not _optional(t) and k not in options) == []
    assert sorted(k for k, t in schema.items() if _optional(t) and k in options) == []
    assert set(options) <= set(schema)


# --- translations, ports, build -------------------------------------------------------------


def _translation_keys(schema: dict[str, Any], tree: dict[str, Any], where: str) -> list[str]:
    problems = []
    if set(tree) != set(schema):
        missing, extra = sorted(set(schema) - set(tree)), sorted(set(tree) - set(schema))
        problems.append(f"{where}: missing {missing}, not options {extra}")
    for key, typ in schema.items():
        inner = typ[0] if isinstance(typ, list) else typ
        if isinstance(inner, dict) and key in tree:
            fields = tree[key].get("fields", {})
            problems += _translation_keys(inner, fields, f"{where}/{key}/fields")
    return problems


@pytest.mark.parametrize("path", TRANSLATIONS, ids=[p.name for p in TRANSLATIONS])
def test_translations_match_options_and_ports(path: Path) -> None:
    cfg, translation = config(), load_yaml(path)
    assert _translation_keys(cfg["schema"], translation.get("configuration", {}), path.name) == []
    assert set(translation.get("network", {})) == set(cfg.get("ports", {}))


def test_every_port_is_described() -> None:
    cfg = config()
    assert set(cfg["ports_description"]) == set(cfg["ports"])


def test_build_covers_every_architecture() -> None:
    """What the linter's community checks ask: build_from per arch equals config's arch."""
    build_from = load_yaml(ADDON / "build.yaml").get("build_from")
    if isinstance(build_from, dict):
        assert set(build_from) == set(config()["arch"])


def test_host_port_is_off_by_default() -> None:
    """The integration reaches the add-on on the internal network; the host port is opt-in."""
    assert config()["ports"] == {"8090/tcp": None}


# --- hardware claims match the code ---------------------------------------------------------

_GPU_CLAIM = re.compile(r"/dev/dri|\biGPU|Intel/AMD|OpenVINO|VA-API|\bvideo:", re.IGNORECASE)
_SAYS_PLANNED = re.compile(r"planned|not yet|no runtime", re.IGNORECASE)


def _server_uses_dri() -> bool:
    """A runtime that uses Intel/AMD GPUs (OpenVINO, planned in issue 12) is in the server."""
    return any(
        "openvino" in p.read_text(encoding="utf-8").lower()
        for p in (ROOT / "ai_server").rglob("*.py")
    )


def test_gpu_access_is_asked_for_exactly_when_a_runtime_uses_it() -> None:
    cfg = config()
    asks = bool(cfg.get("video")) or any(d.startswith("/dev/dri") for d in cfg.get("devices", []))
    assert asks == _server_uses_dri()


def test_docs_promise_no_gpu_that_no_runtime_uses() -> None:
    """Until a runtime uses them, every paragraph that speaks of Intel/AMD GPUs says planned."""
    texts = [
        ROOT / "README.md",
        ADDON / "DOCS.md",
        ADDON / "config.yaml",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    claims = []
    for path in texts:
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            if _GPU_CLAIM.search(paragraph) and not _SAYS_PLANNED.search(paragraph):
                claims.append(f"{path.relative_to(ROOT)}: {paragraph.strip()[:120]}")
    assert _server_uses_dri() or claims == []


# --- presentation ---------------------------------------------------------------------------


def test_icon_and_logo() -> None:
    """docs/apps/presentation.md: icon.png square (128x128 recommended), logo.png ~250x100."""
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG"
        assert icon.width == icon.height >= 128
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG"
        assert logo.width > logo.height >= 50


def test_docs_name_every_option_and_changelog_has_this_version() -> None:
    cfg = config()
    docs = (ADDON / "DOCS.md").read_text(encoding="utf-8")
    assert sorted(k for k in cfg["schema"] if f"`{k}`" not in docs) == []
    changelog = (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(cfg['version'])}\b", changelog, re.MULTILINE)
