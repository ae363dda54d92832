"""Every YAML and JSON file the repository ships parses, and no mapping repeats a key.

addon/translations/en.yaml once held an unquoted `: ` in a description and no test noticed:
Supervisor would have dropped the translations with a log warning. Files come from git (tracked,
plus new files git does not ignore), so a new file is checked before it is committed. YAML is read
with Home Assistant's tags accepted (`!input`, `!secret`, `!include`, ...: blueprints and
configuration snippets) and duplicate keys rejected (YAML keeps the last one silently).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = (".yaml", ".yml", ".json")
_SKIP_DIRS = {".git", ".venv", "node_modules", ".demo", ".cache", ".mypy_cache", ".ruff_cache"}


def shipped_files() -> list[str]:
    """Repository-relative paths of every YAML and JSON file in the working tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--"]
            + [f"*{suffix}" for suffix in SUFFIXES],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [p for p in listed.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        paths = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.suffix in SUFFIXES and not _SKIP_DIRS & set(p.relative_to(ROOT).parts)
        ]
    return sorted({p for p in paths if (ROOT / p).is_file()})  # a deleted file is not shipped


class RepositoryLoader(yaml.SafeLoader):
    """SafeLoader that accepts any `!tag` as plain data and rejects duplicate keys."""


def _tagged(loader: RepositoryLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _unique_mapping(loader: RepositoryLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


RepositoryLoader.add_multi_constructor("!", _tagged)
RepositoryLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=RepositoryLoader))


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate key(s) {duplicates}")
    return dict(pairs)


def load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_object)


def parse(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        load_json(text)
    else:
        load_yaml(text)


FILES = shipped_files()


@pytest.mark.parametrize("path", FILES)
def test_file_parses(path: str) -> None:
    try:
        parse(path)
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as err:
        pytest.fail(f"{path} does not parse: {err}")


def test_the_list_covers_the_repository() -> None:
    for known in (
        "addon/config.yaml",
        "addon/translations/en.yaml",
        "repository.yaml",
        "custom_components/hsi/manifest.json",
        "ai_server/openapi.yaml",
        ".github/workflows/release.yml",
    ):
        assert known in FILES


def test_the_loader_accepts_ha_tags_and_rejects_what_it_should() -> None:
    assert load_yaml("a: !input motion_sensor\nb: !secret key\nc: !include_dir_list x\n") == [
        {"a": "motion_sensor", "b": "key", "c": "x"}
    ]
    assert load_yaml("a: !input\n  x: 1\n") == [{"a": {"x": 1}}]
    # What addon/translations/en.yaml said (a `: ` inside a plain scalar).
    with pytest.raises(yaml.YAMLError, match="mapping values are not allowed"):
        load_yaml("a:\n  description: Empty = auto: 16 on a GPU.\n")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'a'"):
        load_yaml("a: 1\nb: 2\na: 3\n")
    with pytest.raises(ValueError, match="duplicate key"):
        load_json('{"a": 1, "a": 2}')
    with pytest.raises(ValueError):
        load_json('{"a": 1,}')
