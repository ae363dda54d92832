#!/usr/bin/env python3
"""Check that every version of a release agrees (and, with --tag, that it is the tag's).

One release has one version, written in six places, plus two pins of the client library:

- ai_server/__init__.py            ``__version__`` of the server package (hsi-ai-server)
- client/src/hsi_client/__init__.py ``__version__`` of the client library (hsi-client)
- custom_components/hsi/manifest.json  ``version``, and ``requirements`` pins hsi-client==VERSION
- addon/config.yaml                ``version`` of the add-on
- docker-compose.yml               ``BUILD_VERSION`` build argument of the standalone image
- pyproject.toml                   ``dependencies`` pins hsi-client==VERSION

The release workflow (.github/workflows/release.yml) runs this with ``--tag "$GITHUB_REF_NAME"``
before anything is built; tests/ai_server/test_release.py runs it on the working tree.
Exit status 0 when everything agrees, 1 with one line per disagreeing file otherwise.
Standard library and PyYAML only.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

SERVER_INIT = "ai_server/__init__.py"
CLIENT_INIT = "client/src/hsi_client/__init__.py"
MANIFEST = "custom_components/hsi/manifest.json"
ADDON_CONFIG = "addon/config.yaml"
COMPOSE = "docker-compose.yml"
COMPOSE_SERVICE = "hsi-ai-server"
ROOT_PYPROJECT = "pyproject.toml"
CLIENT_PYPROJECT = "client/pyproject.toml"
CLIENT_DIST = "hsi-client"

# A PEP 440 public version without epoch or local part: what PyPI, HA and Supervisor all accept.
VERSION_RE = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")
# A requirement on the client library (any spelling PEP 503 normalises to hsi-client).
CLIENT_REQ_RE = re.compile(r"\s*hsi[-_.]+client\b(?P<rest>.*)", re.IGNORECASE)


class VersionError(Exception):
    """A file whose version cannot be read."""


def module_version(path: Path) -> str:
    """``__version__ = "..."`` of a module, read without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets):
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value
                raise VersionError("__version__ is not a string literal")
    raise VersionError("no __version__ = '...' assignment")


def load_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise VersionError("not a JSON object")
    return data


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise VersionError("not a YAML mapping")
    return data


def load_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def versions(root: Path) -> tuple[dict[str, str], list[str]]:
    """Every place a release version is written: {relative path: version}, and read errors."""
    found: dict[str, str] = {}
    errors: list[str] = []
    readers: list[tuple[str, Any]] = [
        (SERVER_INIT, module_version),
        (CLIENT_INIT, module_version),
        (MANIFEST, lambda p: load_json(p)["version"]),
        (ADDON_CONFIG, lambda p: load_yaml(p)["version"]),
        (
            COMPOSE,
            lambda p: load_yaml(p)["services"][COMPOSE_SERVICE]["build"]["args"]["BUILD_VERSION"],
        ),
    ]
    # A static `version` in a pyproject (instead of the dynamic attr) is one more place.
    for pyproject in (ROOT_PYPROJECT, CLIENT_PYPROJECT):
        readers.append((pyproject, lambda p: load_toml(p).get("project", {}).get("version")))
    for rel, read in readers:
        try:
            value = read(root / rel)
        except (OSError, ValueError, KeyError, SyntaxError, yaml.YAMLError, VersionError) as err:
            errors.append(f"{rel}: cannot read its version ({type(err).__name__}: {err})")
            continue
        if value is None:  # a pyproject with a dynamic version
            continue
        if not isinstance(value, str):
            # YAML reads `version: 0.1` as a float: the add-on version must be quoted.
            errors.append(f"{rel}: version {value!r} is not a string (quote it)")
            continue
        found[rel] = value
    return found, errors


def client_pins(requirements: list[Any]) -> list[str]:
    """The version specifiers (text after the name) of every hsi-client requirement."""
    pins = []
    for req in requirements:
        match = CLIENT_REQ_RE.fullmatch(str(req))
        if match:
            pins.append(match["rest"].strip())
    return pins


def check_pin(rel: str, requirements: Any, where: str, version: str) -> list[str]:
    if not isinstance(requirements, list):
        return [f"{rel}: {where} is missing or not a list"]
    pins = client_pins(requirements)
    wanted = f"{CLIENT_DIST}=={version}"
    if pins == [f"=={version}"]:
        return []
    if not pins:
        return [f"{rel}: {where} does not require {CLIENT_DIST}; it must pin {wanted!r}"]
    shown = ", ".join(repr(f"{CLIENT_DIST}{p}") for p in pins)
    return [f"{rel}: {where} has {shown}; it must pin exactly {wanted!r}"]


def check(root: Path = ROOT, tag: str | None = None) -> tuple[str | None, list[str]]:
    """The release version and every disagreement found (empty when all agree).

    With a tag (``vX.Y.Z``) the tag's version is the one every file must carry; without one,
    the version most files carry is, and each file that differs is named.
    """
    found, errors = versions(root)
    expected: str | None = None
    if tag is not None:
        if not tag.startswith("v") or not VERSION_RE.fullmatch(tag[1:]):
            errors.append(f"tag {tag!r} is not a release tag vX.Y.Z")
        else:
            expected = tag[1:]
    elif found:
        counts = Counter(found.values())
        top = max(counts.values())
        # Ties go to the server package, then to the order of the table above.
        expected = next(v for v in found.values() if counts[v] == top)
    if expected is None:
        return None, errors

    source = f"tag {tag}" if tag is not None else "the other files"
    for rel, value in found.items():
        if value != expected:
            errors.append(f"{rel}: version {value!r} differs from {expected!r} ({source})")
    if not VERSION_RE.fullmatch(expected):
        errors.append(f"version {expected!r} is not a PEP 440 release version like 1.2.3")

    try:
        manifest = load_json(root / MANIFEST)
        errors += check_pin(MANIFEST, manifest.get("requirements"), "requirements", expected)
    except (OSError, ValueError, VersionError):
        pass  # already reported by versions()
    try:
        project = load_toml(root / ROOT_PYPROJECT).get("project", {})
        errors += check_pin(
            ROOT_PYPROJECT, project.get("dependencies"), "[project] dependencies", expected
        )
    except (OSError, ValueError) as err:
        errors.append(f"{ROOT_PYPROJECT}: cannot read it ({type(err).__name__}: {err})")
    return expected, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tag", help="the release tag, e.g. v0.2.0 (GITHUB_REF_NAME)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    version, errors = check(args.root, args.tag)
    if errors:
        print("Release versions disagree:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    print(f"Release versions agree: {version} (server, client, integration, add-on, pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
