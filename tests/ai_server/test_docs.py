"""Documentation that is generated from the code stays in step with it."""

from __future__ import annotations

import re
from pathlib import Path

from ai_server.config import SPECS, settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_current() -> None:
    block = re.search(
        r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", README.read_text(), re.S
    )
    assert block, "README.md lost its settings markers"
    assert block.group(1) == settings_markdown(), "README settings table is stale: run make docs"


def test_every_setting_has_a_row() -> None:
    table = settings_markdown()
    for spec in SPECS:
        assert f"| `{spec.env}` | `{spec.flag}` / `{spec.field}` |" in table
