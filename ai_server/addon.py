"""Home Assistant add-on support: the API key the add-on makes for itself, Supervisor discovery.

Inside the add-on, Supervisor sets SUPERVISOR_TOKEN. Then:

- with no API key configured, the server generates one on first start, keeps it in the add-on's
  data folder (`/data/api_key`, mode 0600) and uses it on every later start, so the add-on never
  serves unauthenticated; a key set in the options (or environment, or CLI) always wins and the
  stored one is left as it is;
- at start it asks Supervisor for its own hostname and posts a discovery message for the `hsi`
  service with the URL and the key; Home Assistant then offers the integration with both filled in
  (the integration's `async_step_hassio`), so the user never types the key.

Outside the add-on (no SUPERVISOR_TOKEN) none of this runs. The key is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .config import ConfigError, Settings
from .keys import SETTINGS
from .runtime.tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)
SUPERVISOR_URL = "http://supervisor"
# The add-on's private, persistent folder (Supervisor mounts it; /data/options.json lives there).
ADDON_DATA_DIR = Path("/data")
API_KEY_FILE = "api_key"
SERVICE = "hsi"
# Seconds between discovery attempts after a failure (Supervisor may still be starting up).
RETRY_DELAYS: tuple[float, ...] = (5.0, 15.0, 60.0)
DISCOVERY_TASK = web.AppKey("supervisor_discovery", asyncio.Task[bool])


@dataclass(frozen=True)
class AddonEnvironment:
    """What Supervisor gives the add-on: its API token, where the API is, the data folder.

    `HSI_SUPERVISOR_URL` and `HSI_ADDON_DATA_DIR` exist for tests (a fake Supervisor on
    127.0.0.1, a temporary data folder); Supervisor sets neither.
    """

    token: str
    supervisor_url: str = SUPERVISOR_URL
    data_dir: Path = ADDON_DATA_DIR

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AddonEnvironment | None:
        """The add-on's environment, or None when the server does not run as the add-on."""
        token = environ.get("SUPERVISOR_TOKEN", "").strip()
        if not token:
            return None
        return cls(
            token=token,
            supervisor_url=(environ.get("HSI_SUPERVISOR_URL") or SUPERVISOR_URL).rstrip("/"),
            data_dir=Path(environ.get("HSI_ADDON_DATA_DIR") or ADDON_DATA_DIR),
        )


def provision_api_key(settings: Settings, data_dir: Path = ADDON_DATA_DIR) -> Settings:
    """The add-on's settings with an API key: the configured one, else the stored one, else a new
    one stored in `data_dir` (readable by its owner only). Raises ConfigError if a stored key
    cannot be read: the add-on does not start with a key other than the one Home Assistant holds.
    A new key that cannot be stored (disk full, read-only /data) is used for this run only, with
    an error logged: the server stays guarded, and discovery hands the key to Home Assistant."""
    path = data_dir / API_KEY_FILE
    if settings.api_key:
        _LOGGER.info("API key: the configured one (add-on option api_key or HSI_API_KEY)")
        return settings
    key = _read_key(path)
    if key is not None:
        _LOGGER.info("API key: the one generated at first start, stored in %s", path)
        return replace(settings, api_key=key)
    key = secrets.token_urlsafe(32)
    try:
        _store_key(path, key)
    except OSError as err:
        # Refusing to start would leave the house without its security service until someone
        # frees the disk; a key kept in memory keeps the server guarded, and Home Assistant's
        # entry takes each start's key from discovery.
        _LOGGER.error(
            "No API key configured and the generated one cannot be stored in %s (%s): using it "
            "for this run only; Home Assistant receives it through discovery. Free space or "
            "make the folder writable, or set api_key in the add-on options, so that the key "
            "survives a restart.",
            path,
            err.strerror or err,
        )
        return replace(settings, api_key=key)
    _LOGGER.warning(
        "No API key configured: generated one and stored it in %s (readable by root only). "
        "Home Assistant receives it through discovery. To use the server from outside Home "
        "Assistant, set your own api_key in the add-on options.",
        path,
    )
    return replace(settings, api_key=key)


def _read_key(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no key yet (or no folder that could hold one)
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"cannot read the stored API key {path}: {err}; "
            "delete the file to generate a new key, or set api_key in the add-on options"
        ) from None
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
            _LOGGER.warning("%s was readable by others: made it readable by its owner only", path)
    except OSError as err:
        _LOGGER.warning("could not restrict %s to its owner: %s", path, err)
    key = text.strip()
    if not key or any(char.isspace() for char in key):
        _LOGGER.warning("%s holds no valid key: generating a new one", path)
        return None
    return key


def _store_key(path: Path, key: str) -> None:
    """Write the key atomically (a temporary file renamed over it), mode 0600 from the start;
    OSError when it cannot (nothing half-written is left)."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
        tmp = None
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def register_discovery(
    app: web.Application,
    token: str,
    *,
    base_url: str = SUPERVISOR_URL,
    retry_delays: Sequence[float] = RETRY_DELAYS,
) -> None:
    """Announce the server once it is listening, retrying a few times; a failure is logged, never
    fatal. The task's result says whether Home Assistant was told."""

    async def discovery(app: web.Application) -> AsyncIterator[None]:
        app[DISCOVERY_TASK] = asyncio.create_task(
            _announce_with_retries(app, token, base_url, retry_delays),
            name="supervisor-discovery",
        )
        yield
        await cancel_and_wait(app[DISCOVERY_TASK])

    app.cleanup_ctx.append(discovery)


async def _announce_with_retries(
    app: web.Application, token: str, base_url: str, retry_delays: Sequence[float]
) -> bool:
    for delay in (*retry_delays, None):
        if await announce(app, token, base_url):
            return True
        if delay is None:
            break
        await asyncio.sleep(delay)
    _LOGGER.error(
        "Home Assistant was not told about the server (Supervisor discovery failed); "
        "restart the add-on to try again, or add the integration by hand"
    )
    return False


async def announce(app: web.Application, token: str, base_url: str) -> bool:
    """One discovery message for the `hsi` service, with host, port, TLS and the API key."""
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
    except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as err:
        _LOGGER.warning("could not announce the server to Home Assistant: %s", _describe(err))
        return False
    _LOGGER.info("announced to Home Assistant as %s:%d", config["host"], settings.port)
    return True


def _describe(err: Exception) -> str:
    if isinstance(err, aiohttp.ClientResponseError):
        return f"Supervisor answered {err.status} {err.message} to {err.request_info.url.path}"
    if isinstance(err, KeyError):
        return f"Supervisor's answer lacks {err}"
    return str(err) or type(err).__name__
