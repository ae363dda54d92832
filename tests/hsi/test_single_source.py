"""One contract, one scorer: the server and the integration keep no copy of what hsi_client owns.

The object taxonomy, risk levels and their bounds, time of day, key-frame choice and the rules
scorer live in the client library (client/src/hsi_client). This test reads the source of the
server and of the integration and fails on a definition that duplicates one of them: a function
or constant of the library's by name, a literal collection of taxonomy classes or risk levels,
or the level floors as numbers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from hsi_client import taxonomy
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("ai_server", "custom_components/hsi")

OWNED_FUNCTIONS = frozenset(
    {
        "group_of",
        "is_wanted",
        "level_for",
        "risk_level_for",
        "level_rank",
        "clamp_score",
        "time_of_day",
        "key_frame",
        "key_frames",
        "score_event",
        "quality_of",
        "distinct_counts",
    }
)
OWNED_CONSTANTS = frozenset(
    {
        "PERSON_CLASSES",
        "VEHICLE_CLASSES",
        "ANIMAL_CLASSES",
        "WEAPON_LIKE_CLASSES",
        "PLATE_CLASSES",
        "OBJECT_GROUPS",
        "RISK_LEVELS",
        "LEVELS",
        "LEVEL_FLOORS",
        "AWAY_WORDS",
        "NIGHT_MODE_WORDS",
        "NIGHT_HOURS",
        "SEVERITIES",
    }
)
CLASS_NAMES = (
    taxonomy.PERSON_CLASSES
    | taxonomy.VEHICLE_CLASSES
    | taxonomy.ANIMAL_CLASSES
    | taxonomy.WEAPON_LIKE_CLASSES
    | {"airplane"}
)
LEVEL_NAMES = frozenset({"low", "medium", "high", "critical"})
LEVEL_FLOORS = frozenset({30, 60, 85})


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return []


def _numbers(node: ast.AST) -> set[int]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        found: set[int] = set()
        for element in node.elts:
            if isinstance(element, ast.Constant) and type(element.value) is int:
                found.add(element.value)
            else:
                found |= _numbers(element)
        return found
    return set()


def findings(source: str, name: str) -> Iterator[str]:
    """What in one module duplicates the library."""
    for node in ast.walk(ast.parse(source, name)):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name in OWNED_FUNCTIONS
        ):
            yield f"{name}:{node.lineno}: defines {node.name}()"
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in OWNED_CONSTANTS:
                yield f"{name}:{node.lineno}: defines {target.id}"
        strings = _strings(node)
        if len(strings) >= 2 and set(strings) <= CLASS_NAMES:
            yield f"{name}:{node.lineno}: a list of object classes {strings}"
        if len(set(strings) & LEVEL_NAMES) >= 3:
            yield f"{name}:{node.lineno}: a list of risk levels {strings}"
        if _numbers(node) >= LEVEL_FLOORS:
            yield f"{name}:{node.lineno}: the risk level floors as numbers"


def _sources() -> Iterator[Path]:
    for folder in CHECKED:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_server_and_integration_keep_no_copy_of_the_contract() -> None:
    found = [
        f for path in _sources() for f in findings(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def group_of(label): ...", "defines group_of()"),
        ("VEHICLE_CLASSES = {'car'}", "defines VEHICLE_CLASSES"),
        ("x = ('car', 'truck', 'bus')", "a list of object classes"),
        ("opts = ['low', 'medium', 'high', 'critical']", "a list of risk levels"),
        ("B = ((85, 'c'), (60, 'h'), (30, 'm'))", "the risk level floors as numbers"),
        ("class C:\n    def time_of_day(self): ...", "defines time_of_day()"),
    ],
)
def test_a_copy_is_found(source: str, expected: str) -> None:
    assert any(expected in f for f in findings(source, "sample.py"))


def test_unrelated_code_passes() -> None:
    source = "labels = ['person', 'chair', 'tv']\nsizes = (30, 60)\nmodes = ['low', 'high']\n"
    assert list(findings(source, "sample.py")) == []
