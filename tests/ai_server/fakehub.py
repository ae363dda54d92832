"""A Hugging Face hub on 127.0.0.1 for the provisioning tests (point HF_ENDPOINT at it).

It answers the two things a download needs, the way huggingface.co does:

- `GET /api/models/{org}/{name}/revision/{revision}?blobs=true`: `{"id", "sha", "siblings":
  [{"rfilename", "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}]}` (`lfs` for
  weight files only), 404 for an unknown repository or revision;
- `GET|HEAD /{org}/{name}/resolve/{revision}/{file}`: small files directly, LFS files by a 302 to
  a "CDN" on another origin (`localhost` instead of `127.0.0.1`, as the hub redirects to its CDN
  host), with `ETag`, `X-Repo-Commit`, `Accept-Ranges`,
  and `Range: bytes=N-` answered `206` with `Content-Range`.

Knobs a test sets: `pause_at` (stop sending a file at an offset until `resume` is set; `paused`
tells when it got there), `cut_at` (close the connection after that many bytes of a file, once),
`status` (answer a file, or "api", with that HTTP status), `chunk` and `delay_s` (pace the body).
`requests` records every request: method, path, Range and Authorization headers.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    pause_at: dict[str, int] = field(default_factory=dict)
    cut_at: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    chunk: int = 64 * 1024
    delay_s: float = 0.0
    url: str = ""
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    def add_folder(self, repo: str, folder: Path) -> None:
        """Serve every file of `folder` (not its dotfiles) as repository `repo`."""
        self.repos[repo] = {
            p.name: p.read_bytes()
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }

    def file_requests(self, name: str) -> list[Seen]:
        """Requests that fetched the body of file `name` (on the CDN, for LFS files)."""
        cdn = name.endswith(LFS_SUFFIXES)
        return [
            s
            for s in self.requests
            if s.method == "GET"
            and s.path.endswith(f"/{name}")
            and s.path.startswith("/cdn/") == cdn
        ]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/models/{org}/{name}/revision/{revision}", self._info)
        app.router.add_route("*", "/{org}/{name}/resolve/{revision}/{file:.+}", self._resolve)
        app.router.add_get("/cdn/{org}/{name}/{file:.+}", self._cdn)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.requests.append(
            Seen(
                request.method,
                request.path,
                request.headers.get("Range"),
                request.headers.get("Authorization"),
            )
        )
        return await handler(request)

    def _repo(self, request: web.Request) -> tuple[str, dict[str, bytes]]:
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
            )
        return repo, self.repos[repo]

    async def _info(self, request: web.Request) -> web.Response:
        if "api" in self.status:
            return _status(self.status["api"])
        repo, files = self._repo(request)
        if request.match_info["revision"] not in ("main", COMMIT):
            raise web.HTTPNotFound(headers={"X-Error-Message": "Revision not found"})
        siblings = []
        for name, data in files.items():
            entry: dict[str, object] = {
                "rfilename": name,
                "size": len(data),
                "blobId": hashlib.sha1(data).hexdigest(),
            }
            if name.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                entry["lfs"] = {"sha256": sha, "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        return web.json_response({"id": repo, "modelId": repo, "sha": COMMIT, "siblings": siblings})

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        repo, files = self._repo(request)
        name = request.match_info["file"]
        if name not in files:
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"})
        data = files[name]
        headers = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if name.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            headers |= {"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"'}
            headers["X-Linked-Size"] = str(len(data))
            # To another origin, as the hub's to its CDN ("localhost" for "127.0.0.1"): a client
            # must not send the token there, and huggingface_hub reads the file's metadata from
            # this answer instead of following it.
            cdn = request.url.with_host("localhost").with_path(f"/cdn/{repo}/{name}")
            headers["Location"] = str(cdn)
            return web.Response(status=302, headers=headers)
        headers["ETag"] = f'"{hashlib.sha1(data).hexdigest()}"'
        return await self._send(request, name, data, headers)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        _, files = self._repo(request)
        name = request.match_info["file"]
        return await self._send(request, name, files[name], {"Accept-Ranges": "bytes"})

    async def _send(
        self, request: web.Request, name: str, data: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        if name in self.status:
            return _status(self.status[name])
        start = 0
        status = 200
        if (asked := request.headers.get("Range")) is not None:
            start = int(asked.removeprefix("bytes=").partition("-")[0])
            if start >= len(data):
                raise web.HTTPRequestRangeNotSatisfiable()
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data) - start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        offset = start
        cut = self.cut_at.pop(name, None)
        while offset < len(data):
            end = min(len(data), offset + self.chunk)
            if cut is not None and offset < cut <= end:
                end = cut
            pause = self.pause_at.get(name)
            if pause is not None and offset < pause <= end:
                end = pause
            await response.write(data[offset:end])
            offset = end
            if offset == cut:
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-file
                return response
            if offset == pause:
                self.paused.set()
                await self.resume.wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        await response.write_eof()
        return response


def _status(code: int) -> web.Response:
    return web.Response(
        status=code, text="scripted", headers={"X-Error-Message": f"scripted {code}"}
    )
