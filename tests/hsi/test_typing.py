"""The integration type-checks under mypy --strict in Home Assistant's own environment."""

from __future__ import annotations

import subprocess
import sys

from homeassistant.const import __version__ as HA_VERSION

from .conftest import REPO_ROOT


def test_strict_typing() -> None:
    """custom_components/mypy.ini: strict, warn on unused ignores and unreachable code."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "custom_components/mypy.ini",
            # One cache per Home Assistant version: the suites of two versions share this tree.
            "--cache-dir",
            f".mypy_cache/ha-{HA_VERSION}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
