"""End to end: `scripts/demo.py --check`, the main job for real, as a new user first meets it.

The AI server (scripted profile, API key) and a real Home Assistant process (the demo scene's
camera and motion sensor, the HSI integration from this tree) start; onboarding, the HSI config
entry, the camera subentry and the options go through HA's REST APIs; `hsi.analyze` runs on
camera.demo_camera while the scene's visitor is in view. The script prints one
`DEMO_RESULT {json}` line, which these tests read: what the analysis said, the camera device's
entities, the alert in the notification drawer, what the server device's Visit link opens and
the media browser's sources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "scripts" / "demo.py"
PREFIX = "DEMO_RESULT "
LEVELS = [(85, "critical"), (60, "high"), (30, "medium"), (0, "low")]


def _ha_python() -> str:
    python = os.environ.get("HSI_HA_PYTHON", str(REPO_ROOT / ".venv" / "ha" / "bin" / "python"))
    if not Path(python).exists():
        pytest.fail(f"{python} not found: run `make venv-ha venv-ha-demo` or set HSI_HA_PYTHON")
    return python


def _demo(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(DEMO),
            "--check",
            "--ha-port",
            "0",
            "--server-port",
            "0",
            "--dir",
            str(tmp_path / "demo"),
            "--server-python",
            os.environ.get("HSI_SERVER_PYTHON", sys.executable),
            *extra,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _level(score: int) -> str:
    return next(level for floor, level in LEVELS if score >= floor)


def test_demo_check(tmp_path: Path) -> None:
    """Server + HA come up, the flows create the entry and the camera, analyze answers."""
    # The live scene, as `make demo` runs it: the check waits for the visitor (motion on).
    done = _demo(tmp_path, "--live-scene", "--ha-python", _ha_python())
    output = f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    lines = [line for line in done.stdout.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, output
    result: dict[str, Any] = json.loads(lines[0].removeprefix(PREFIX))
    assert result["ok"] is True
    assert result["entry_id"]
    assert result["device_id"]

    # What the analysis says makes sense: the scene's visitor, scored by the rules (the
    # scripted profile has no LLM), never random-weight text.
    event = result["event"]
    assert event["event_id"]
    assert isinstance(event["risk_score"], int)
    assert 0 <= event["risk_score"] <= 100
    assert event["risk_level"] == _level(event["risk_score"])
    assert event["source"] == "rules"
    assert event["objects"] == [{"class": "person", "confidence": 0.93}]
    assert event["counts"] == {"person": 1}
    assert "1 person" in event["summary"]
    # Everyone is away (the demo's home mode): a visitor is worth an alert.
    assert event["risk_level"] in ("medium", "high")

    # The camera's device in HA shows the same event, in short states.
    entities = result["entities"]
    assert entities["sensor.demo_camera_risk_score"] == str(event["risk_score"])
    assert result["units"]["sensor.demo_camera_risk_score"] == "%"
    assert entities["sensor.demo_camera_risk_level"] == event["risk_level"]
    assert entities["sensor.demo_camera_last_event"] == (
        f"{event['risk_level'].capitalize()} · 1 person"
    )
    assert all(len(state) <= 40 for state in entities.values()), entities
    assert entities["switch.demo_camera_analysis"] == "on"
    assert entities["binary_sensor.demo_camera_threat"] == (
        "on" if event["risk_score"] >= 60 else "off"
    )

    # No notify target is configured: the alert is in the notification drawer, with the event.
    notification = result["notification"]
    assert "Demo camera" in notification["title"]
    assert f"hsi_event={event['event_id']}" in notification["message"]

    # The server device's Visit link opens a page, not a 401 in JSON.
    (visit,) = result["visit_links"]
    assert visit["url"] == result["server_url"]
    assert (visit["status"], visit["type"]) == (200, "text/html")

    # The media browser has the HSI source (configuration.yaml loads media_source).
    assert "media-source://hsi" in result["media_sources"]

    # HA logged no error of the integration (libturbojpeg and ffmpeg errors are the demo's).
    log = (tmp_path / "demo" / "ha.log").read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line and "hsi" in line]
    assert not errors, "\n".join(errors)


def test_demo_check_fails_clearly(tmp_path: Path) -> None:
    """A missing environment is a non-zero exit with a message, not a hang."""
    done = _demo(tmp_path, "--ha-python", str(tmp_path / "no-such-python"))
    assert done.returncode == 1
    assert "no-such-python not found" in done.stderr
    assert "make venv-ha" in done.stderr
