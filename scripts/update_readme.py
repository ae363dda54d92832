"""Regenerate the settings table in README.md from ai_server.config (run by `make docs`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ai_server.config import settings_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- settings:start -->\n).*?(<!-- settings:end -->)", re.S)


def updated(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + settings_markdown() + m.group(2), text)


if __name__ == "__main__":
    text = README.read_text()
    new = updated(text)
    README.write_text(new)
    sys.stdout.write("README.md settings table " + ("updated\n" if new != text else "unchanged\n"))
