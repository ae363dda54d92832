"""The real server process: `python -m ai_server serve --profile tiny`, over HTTP and HTTPS."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import trustme

from .conftest import image_bytes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    tmp_path: Path, cache: Path, *args: str, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (tmp_path / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ai_server",
            "serve",
            "--profile",
            "tiny",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "HSI_CACHE_DIR": str(cache), "HSI_DEVICE": "cpu", **env},
    )
    return process, port


async def wait_healthy(base: str, process: subprocess.Popen[bytes], ssl_context=None) -> dict:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, "server exited early"
            try:
                async with session.get(f"{base}/health", ssl=ssl_context) as response:
                    body = await response.json()
                    if body["status"] == "healthy" and body["model_loaded"]:
                        return body
            except aiohttp.ClientConnectionError:
                pass
            await _sleep()
    raise AssertionError("server did not become healthy in 120 s")


def server_log(tmp_path: Path) -> str:
    return "".join(path.read_text() for path in tmp_path.glob("server-*.log"))


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.25)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=30)


async def test_served_process_with_api_key(tmp_path: Path, model_cache: Path, processes) -> None:
    process, port = start_server(tmp_path, model_cache, HSI_API_KEY="proc-key")
    processes.append(process)
    base = f"http://127.0.0.1:{port}"
    health = await wait_healthy(base, process)
    assert health["device"] == "cpu"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/detect", data=image_bytes(), headers={"Content-Type": "image/jpeg"}
        ) as response:
            assert response.status == 401
        async with session.post(
            f"{base}/detect",
            data=image_bytes(),
            params={"confidence": "0", "classes": "all"},
            headers={"Content-Type": "image/jpeg", "Authorization": "Bearer proc-key"},
        ) as response:
            assert response.status == 200
            assert len((await response.json())["detections"]) == 20
    process.terminate()
    assert process.wait(timeout=30) == 0  # clean shutdown on SIGTERM
    assert "proc-key" not in server_log(tmp_path)  # the key never reaches the log


async def test_tls_with_a_self_signed_certificate(
    tmp_path: Path, model_cache: Path, processes
) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    process, port = start_server(
        tmp_path, model_cache, "--tls-cert", str(cert_file), "--tls-key", str(key_file)
    )
    processes.append(process)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    base = f"https://127.0.0.1:{port}"
    await wait_healthy(base, process, trusted)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/detect",
            data=image_bytes(),
            ssl=trusted,
            headers={"Content-Type": "image/jpeg"},
        ) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{base}/health")  # an untrusted client refuses the certificate
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://127.0.0.1:{port}/health")  # plain HTTP is not served


def test_make_tiny_models_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ai_server",
            "make-tiny-models",
            str(tmp_path),
            "--only",
            "detector",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert f"detector: {tmp_path / 'detector'}" in result.stdout
    assert (tmp_path / "detector" / "config.json").is_file()
    assert (tmp_path / "detector" / "preprocessor_config.json").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "ai_server", "make-tiny-models", str(tmp_path), "--only", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "unknown model(s): nope" in bad.stdout
