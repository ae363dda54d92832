"""The recording notify platform (see __init__)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.components.notify import BaseNotificationService
from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

FILE = "notify-recorder.jsonl"


async def async_get_service(
    hass: HomeAssistant, config: ConfigType, discovery_info: DiscoveryInfoType | None = None
) -> RecordingService:
    """The service, writing into the configuration folder."""
    return RecordingService(Path(hass.config.path(FILE)))


class RecordingService(BaseNotificationService):
    """Append each notification to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        """Write to `path`."""
        self.path = path

    def send_message(self, message: str = "", **kwargs: Any) -> None:
        """One line per call (runs in the executor: a plain file append)."""
        line = json.dumps(
            {"message": message, "title": kwargs.get("title"), "data": kwargs.get("data")}
        )
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
