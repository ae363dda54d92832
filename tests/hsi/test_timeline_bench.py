"""bench/timeline.py, CI-sized: the timeline websocket bench runs on this Home Assistant and
prints one row per case, with each list call's answer checked against what it stored."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[2]
CASES = 9


def test_timeline_bench_prints_every_case() -> None:
    # 300 events: fewer than a page (50) match "camera 0 + high", so the count check is exact.
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "timeline.py"),
         "--events", "300", "--requests", "3", "--publishes", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [
        line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert rows[0] == "| case | n | p50 ms | p95 ms | max ms |"
    assert len(rows) == 1 + CASES, done.stdout
    cases = set()
    for row in rows[1:]:
        case, n, *figures = (cell.strip() for cell in row.strip("|").split("|"))
        assert int(n) in (3, 2), row
        p50, p95, top = map(float, figures)
        assert 0 <= p50 <= p95 <= top and top > 0, row
        cases.add(case)
    assert len(cases) == CASES
    assert "300 events stored" in done.stdout
