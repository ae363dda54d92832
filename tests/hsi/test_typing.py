"""The integration type-checks under mypy --strict in Home Assistant's own environment."""

from __future__ import annotations

import subprocess
import sys

from homeassistant.const import __version__ as HA_VERSION

from .conftest import REPO_ROOT


def _mypy(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_typing() -> None:
    """custom_components/mypy.ini: strict, warn on unused ignores and unreachable code."""
    # One cache per Home Assistant version: the suites of two versions share this tree.
    _mypy(
        "--config-file", "custom_components/mypy.ini", "--cache-dir", f".mypy_cache/ha-{HA_VERSION}"
    )


def test_strict_typing_of_ha_bench_scripts() -> None:
    """bench/event_store.py imports the integration, so it is checked here, not by `make lint`."""
    _mypy(
        "--strict",
        "--python-version",
        "3.13",
        "--explicit-package-bases",
        "--cache-dir",
        f".mypy_cache/bench-ha-{HA_VERSION}",
        "bench/event_store.py",
    )
