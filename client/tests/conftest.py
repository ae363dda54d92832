"""Fixtures of the library's tests: the fake server running, a plain session, the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from hsi_client import HsiClient
from hsi_client.testing import FakeServer


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    """The library's fake server (hsi_client.testing), running on 127.0.0.1."""
    async with FakeServer().serve() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, as an application would share it."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def api(fake_server: FakeServer, session: aiohttp.ClientSession) -> HsiClient:
    """A client of the fake server, without an API key."""
    return HsiClient(fake_server.url, session)
