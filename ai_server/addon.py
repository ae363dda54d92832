"""Home Assistant add-on support: announce the server to HA through Supervisor discovery.

Inside the add-on, Supervisor sets SUPERVISOR_TOKEN. At start the server asks Supervisor for its
own hostname and posts a discovery message for the `hsi` service; Home Assistant then offers the
integration with URL and API key filled in (the integration's `async_step_hassio`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from .keys import SETTINGS
from .runtime.tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)
SUPERVISOR_URL = "http://supervisor"
SERVICE = "hsi"
DISCOVERY_TASK = web.AppKey("supervisor_discovery", asyncio.Task[bool])


def register_discovery(app: web.Application, token: str, *, base_url: str = SUPERVISOR_URL) -> None:
    """Announce the server once it is listening (a failure is logged, never fatal)."""

    async def discovery(app: web.Application) -> AsyncIterator[None]:
        app[DISCOVERY_TASK] = asyncio.create_task(
            announce(app, token, base_url), name="supervisor-discovery"
        )
        yield
        await cancel_and_wait(app[DISCOVERY_TASK])

    app.cleanup_ctx.append(discovery)


async def announce(app: web.Application, token: str, base_url: str) -> bool:
    settings = app[SETTINGS]
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async with session.get(f"{base_url}/addons/self/info") as response:
                response.raise_for_status()
                info: dict[str, Any] = (await response.json())["data"]
            config = {
                "host": info["hostname"],
                "port": settings.port,
                "ssl": settings.tls_enabled,
                "api_key": settings.api_key,
            }
            async with session.post(
                f"{base_url}/discovery", json={"service": SERVICE, "config": config}
            ) as response:
                response.raise_for_status()
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as err:
        _LOGGER.warning("could not announce the server to Home Assistant: %s", err)
        return False
    _LOGGER.info("announced to Home Assistant as %s:%d", config["host"], settings.port)
    return True
