"""Fixtures of the library's tests: the fake server running, a plain session, the client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fakes import FakeServer
from hsi_client import HsiClient


@pytest.fixture
async def fake_server(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> FakeServer:
    """A running fake server on 127.0.0.1."""
    server = FakeServer()
    running = await aiohttp_server(server.app())
    server.url = str(running.make_url("")).rstrip("/")
    return server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, as an application would share it."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def api(fake_server: FakeServer, session: aiohttp.ClientSession) -> HsiClient:
    """A client of the fake server, without an API key."""
    return HsiClient(fake_server.url, session)
