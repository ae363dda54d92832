"""The integration type-checks under mypy --strict in Home Assistant's own environment."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO_ROOT


def test_strict_typing() -> None:
    """custom_components/mypy.ini: strict, warn on unused ignores and unreachable code."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "custom_components/mypy.ini"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
