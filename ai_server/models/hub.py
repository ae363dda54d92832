"""Model weights from the Hugging Face hub, downloaded once into the models folder.

A model named by a hub id (`PekingU/rtdetr_v2_r18vd`) is fetched into `HSI_MODELS_DIR/<org>/<name>`
and loaded from there; a complete folder is used without asking the hub again, offline too.

Why this module downloads and not huggingface_hub: huggingface_hub 2.x writes every download to a
temporary file with a name of its own and deletes it when the download fails, so a multi-GB file
interrupted by a restart (add-on update, host reboot, container stopped) or a longer outage starts
again from zero; it retries a dropped connection only inside one call, from the last 10 MB it
wrote (tests/ai_server/test_provision.py shows it against the fake hub). Here a download survives
restarts:

- the hub's API lists the files with their sizes and sha256 (`GET /api/models/{repo}/revision/
  {revision}?blobs=true`); the commit it names is pinned in `.hsi-download.json` until the folder
  is complete, so a resumed download continues the very same files;
- each file is fetched from `{endpoint}/{repo}/resolve/{commit}/{file}` into `<file>.part` next to
  its final name; after a dropped connection (retried at once, a few times) or a restart it goes on
  with `Range: bytes=<size of the part>-`;
- every file is checked against its size, LFS files against their sha256, then renamed into place;
  `.hsi-model.json` is written last and marks the folder complete.

Progress (bytes, total, percent, rate) goes to a `DownloadProgress` that /health shows, and to the
log at most every `LOG_INTERVAL_S` seconds. Offline (`HSI_OFFLINE`, or `HF_HUB_OFFLINE`), nothing
touches the network: a model that is not complete here fails with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp

from .base import DownloadProgress, ModelLoadError

if TYPE_CHECKING:
    from ..config import Settings

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
MARKER = ".hsi-model.json"  # written last: the folder is complete
PENDING = ".hsi-download.json"  # the commit being fetched, until the folder is complete
PART = ".part"
CHUNK = 1 << 20
# Module settings (tests make them shorter): log a progress line at most this often; retry a
# transient failure (dropped connection, HTTP 5xx/429, timeout) this many times, waiting
# RETRY_DELAY_S, then twice that, ...; give up on a connection that sends nothing this long.
LOG_INTERVAL_S = 5.0
RETRIES = 3
RETRY_DELAY_S = 2.0
READ_TIMEOUT_S = 60.0
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack")
_SMALL_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
OPEN_CLIP_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
)


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository."""

    path: str
    size: int
    sha256: str | None = None  # LFS files only


Select = Callable[[Sequence[RemoteFile]], list[RemoteFile]]


class FetchError(ModelLoadError):
    """A download failed; `transient` failures are worth retrying."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status  # the HTTP status, when the hub answered one


# --- which files a model family needs ---------------------------------------------------------


def _top_level(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    return [f for f in files if "/" not in f.path]


def _small(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    return [f for f in _top_level(files) if f.path.endswith(_SMALL_SUFFIXES)]


def transformers_files(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """Configs, processor and tokenizer files, and ONE weight format: the safetensors when the
    repository has them (sharded ones too), else `pytorch_model*.bin`; never open_clip's copy."""
    top = [f for f in _top_level(files) if not f.path.startswith("open_clip_")]
    weights = [f for f in top if f.path.endswith(".safetensors")] or [
        f for f in top if f.path.startswith("pytorch_model") and f.path.endswith(".bin")
    ]
    return _small(top) + weights


def open_clip_files(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """`open_clip_config.json`, tokenizer files and open_clip's own weights (one format)."""
    by_name = {f.path: f for f in _top_level(files)}
    for name in OPEN_CLIP_WEIGHTS:
        if name in by_name:
            return [f for f in _small(files)] + [by_name[name]]
    return transformers_files(files)


def gguf_file(filename: str | None, quant: str) -> Select:
    """The named GGUF file, else the repository's `quant` one (first by name)."""

    def select(files: Sequence[RemoteFile]) -> list[RemoteFile]:
        if filename is not None:
            return [f for f in files if f.path == filename]
        matches = sorted(
            (f for f in files if f.path.endswith(".gguf") and quant.lower() in f.path.lower()),
            key=lambda f: f.path,
        )
        return matches[:1]

    return select


# --- the store --------------------------------------------------------------------------------


def hub_id(source: str) -> tuple[str, str | None] | None:
    """`(repo, file)` when a setting names a hub model (`org/name`, `org/name/file.gguf`,
    `hf-hub:org/name`); None for a local path (existing or not: the loader says it is missing)."""
    text = source.removeprefix("hf-hub:")
    if Path(text).expanduser().exists() or text.startswith((".", "/", "~")) or "\\" in text:
        return None
    parts = text.split("/")
    if not all(parts):
        return None
    if len(parts) == 2:
        return text, None
    if len(parts) == 3 and parts[2].endswith(".gguf"):
        return "/".join(parts[:2]), parts[2]
    return None


class ModelStore:
    """Where downloaded models live and how they are fetched."""

    def __init__(
        self,
        root: Path,
        *,
        offline: str | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        token: str | None = None,
    ) -> None:
        self.root = root
        self.offline = offline  # the setting that turned the network off, or None
        self.endpoint = endpoint.rstrip("/")
        self.token = token

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """HSI_MODELS_DIR (default HSI_CACHE_DIR/models), HSI_OFFLINE or HF_HUB_OFFLINE, the
        hub at HF_ENDPOINT, and huggingface_hub's token (HF_TOKEN or `hf auth login`)."""
        offline = None
        if settings.offline:
            offline = "HSI_OFFLINE"
        elif os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
            offline = "HF_HUB_OFFLINE"
        token = None
        if offline is None:
            with contextlib.suppress(Exception):  # no huggingface_hub, unreadable token file
                from huggingface_hub import get_token

                token = get_token()
        return cls(
            settings.models_dir or settings.cache_dir / "models",
            offline=offline,
            endpoint=os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT,
            token=token,
        )

    def folder(self, repo: str) -> Path:
        return self.root / repo

    def weights(
        self, repo: str, *, model: str, setting: str, select: Select, file: str | None = None
    ) -> HubWeights:
        return HubWeights(self, repo, model=model, setting=setting, select=select, file=file)


class HubWeights:
    """One model's files from the hub, fetched into `store.folder(repo)` (see module doc)."""

    def __init__(
        self,
        store: ModelStore,
        repo: str,
        *,
        model: str,
        setting: str,
        select: Select,
        file: str | None = None,
    ) -> None:
        self.store = store
        self.repo = repo
        self.model = model  # our name for it (detector, clip, ...), for messages
        self.setting = setting  # the setting that names it, for messages
        self.select = select
        self.file = file  # the one file the loader needs (a GGUF), if it is known up front

    @property
    def source(self) -> str:
        return self.repo

    @property
    def folder(self) -> Path:
        return self.store.folder(self.repo)

    @property
    def path(self) -> Path:
        """What the loader gets: the folder, or the named file in it."""
        return self.folder / self.file if self.file else self.folder

    def present(self) -> bool:
        complete = (self.folder / MARKER).is_file()
        return complete and (self.file is None or (self.folder / self.file).is_file())

    async def fetch(self, progress: DownloadProgress) -> None:
        if self.present():
            return
        if self.store.offline is not None:
            raise FetchError(
                f"{self.model}: offline mode ({self.store.offline}) is on and {self.repo} is not "
                f"in {self.folder}. Start once with {self.store.offline} off to download it from "
                f"the Hugging Face hub, copy a folder that this server downloaded there, or set "
                f"{self.setting} to a local model folder",
                transient=False,
            )
        await _Download(self, progress).run()


class _Download:
    """One run of fetching a repository's files (resuming whatever an earlier run left)."""

    def __init__(self, weights: HubWeights, progress: DownloadProgress) -> None:
        self.weights = weights
        self.store = weights.store
        self.progress = progress
        self.folder = weights.folder
        self.done = 0  # bytes of complete files
        self.last_log = 0.0

    def _fail(
        self, cause: str, *, transient: bool, file: str | None = None, status: int | None = None
    ) -> FetchError:
        what = f"{self.weights.repo}, file {file}" if file else self.weights.repo
        message = f"could not download {self.weights.model} ({what}) from {self.store.endpoint}: "
        message += cause
        if self.progress.bytes and self.progress.total:
            message += (
                f"; {_size(self.progress.bytes)} of {_size(self.progress.total)} are kept and "
                "the next attempt resumes"
            )
        return FetchError(message, transient=transient, status=status)

    def _headers(self) -> dict[str, str]:
        # aiohttp drops Authorization when a redirect leaves the hub's origin (the CDN).
        return {"Authorization": f"Bearer {self.store.token}"} if self.store.token else {}

    async def run(self) -> None:
        try:
            await self._run()
        except OSError as err:
            if isinstance(err, aiohttp.ClientError):  # the network, not the disk
                raise
            # The disk: full (ENOSPC), read-only (EROFS), not ours (EACCES), or a file where a
            # folder must be. Named as such, not as a hub failure; what was written is kept.
            raise self._fail(
                f"cannot write into {self.folder} ({err.strerror or err}); free space there or "
                "set HSI_MODELS_DIR to a writable folder",
                transient=False,
            ) from err

    async def _run(self) -> None:
        weights, progress = self.weights, self.progress
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FetchError(
                f"could not download {weights.model} ({weights.repo}): cannot create "
                f"{self.folder} ({err.strerror or err}); set HSI_MODELS_DIR to a writable folder",
                transient=False,
            ) from err
        pending = self.folder / PENDING
        revision = _read_json(pending).get("revision") or "main"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=READ_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                commit, listed = await self._retrying(lambda: self._listing(session, revision))
            except FetchError as err:
                if revision == "main" or err.status != 404:
                    raise
                _LOGGER.warning(
                    "%s: commit %s of the unfinished download is gone from the hub; starting "
                    "again from the newest one",
                    weights.model,
                    revision,
                )
                commit, listed = await self._retrying(lambda: self._listing(session, "main"))
            files = weights.select(listed)
            if not files:
                names = ", ".join(f.path for f in listed[:20]) or "none"
                raise self._fail(
                    f"no usable files in the repository (it has: {names})", transient=False
                )
            pending.write_text(json.dumps({"repo": weights.repo, "revision": commit}))
            progress.total = sum(f.size for f in files)
            progress.bytes = progress.resumed_from = self._on_disk(files)
            progress.started = time.monotonic()
            self._check_space(progress.total - progress.bytes)
            resumed = f", resuming at {_size(progress.bytes)}" if progress.bytes else ""
            _LOGGER.info(
                "%s: downloading %s from %s into %s: %d file%s, %s%s",
                weights.model,
                weights.repo,
                self.store.endpoint,
                self.folder,
                len(files),
                "" if len(files) == 1 else "s",
                _size(progress.total),
                resumed,
            )
            self.last_log = time.monotonic()
            for remote in files:
                await self._file(session, commit, remote)
        marker = {
            "repo": weights.repo,
            "revision": commit,
            "endpoint": self.store.endpoint,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
            "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (self.folder / MARKER).write_text(json.dumps(marker, indent=1))
        pending.unlink(missing_ok=True)
        progress.file = None
        elapsed = time.monotonic() - progress.started
        rate = progress.rate()
        _LOGGER.info(
            "%s: downloaded %s (%s) in %.1f s%s",
            weights.model,
            weights.repo,
            _size(progress.total or 0),
            elapsed,
            f", {_size(rate)}/s" if rate else "",
        )

    def _on_disk(self, files: Sequence[RemoteFile]) -> int:
        """Bytes already here: complete files, and the parts an earlier run left."""
        total = 0
        for remote in files:
            path = self.folder / remote.path
            part = path.with_name(path.name + PART)
            if _size_of(path) == remote.size:
                total += remote.size
                self.done += remote.size
            else:
                total += min(_size_of(part) or 0, remote.size)
        return total

    def _check_space(self, needed: int) -> None:
        free = shutil.disk_usage(self.folder).free
        if needed > free:
            raise self._fail(
                f"not enough disk space in {self.folder}: {_size(needed)} more are needed and "
                f"{_size(free)} are free",
                transient=False,
            )

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`, retrying transient failures RETRIES times with a growing pause."""
        for tries in range(RETRIES + 1):
            try:
                return await attempt()
            except FetchError as err:
                if not err.transient or tries == RETRIES:
                    raise
                delay = RETRY_DELAY_S * 2**tries
                _LOGGER.warning("%s; retrying in %.0f s", err, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _listing(
        self, session: aiohttp.ClientSession, revision: str
    ) -> tuple[str, list[RemoteFile]]:
        url = (
            f"{self.store.endpoint}/api/models/{self.weights.repo}/revision/"
            f"{quote(revision, safe='')}"
        )
        try:
            async with session.get(url, params={"blobs": "true"}, headers=self._headers()) as resp:
                await self._check(resp, None)
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise self._fail(_cause(err), transient=not isinstance(err, ValueError)) from err
        try:
            commit = str(data["sha"])
            files = [
                RemoteFile(
                    str(item["rfilename"]),
                    int(item.get("lfs", {}).get("size") or item["size"]),
                    (item.get("lfs") or {}).get("sha256"),
                )
                for item in data.get("siblings") or []
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise self._fail(
                f"unexpected answer from the hub API ({err!r})", transient=False
            ) from err
        return commit, files

    async def _check(self, resp: aiohttp.ClientResponse, file: str | None) -> None:
        if resp.status < 400:
            return
        detail = resp.headers.get("X-Error-Message") or resp.reason or ""
        if resp.status in (401, 403):
            # The hub answers 401 for a repository that does not exist too (it does not tell
            # them apart from private ones without a token).
            cause = (
                f"access denied (HTTP {resp.status}: {detail}): the id is wrong, or the model is "
                "private or gated (accept its terms on huggingface.co and give the server a "
                "token: HF_TOKEN)"
            )
        elif resp.status == 404:
            cause = f"not found (HTTP 404: {detail}): check the model id"
        else:
            cause = f"the hub answered HTTP {resp.status} {detail}".rstrip()
        transient = resp.status in (408, 429) or resp.status >= 500
        raise self._fail(cause, transient=transient, file=file, status=resp.status)

    async def _file(self, session: aiohttp.ClientSession, commit: str, remote: RemoteFile) -> None:
        path = self.folder / remote.path
        if _size_of(path) == remote.size:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + PART)
        url = f"{self.store.endpoint}/{self.weights.repo}/resolve/{commit}/{quote(remote.path)}"
        self.progress.file = remote.path

        async def attempt() -> None:
            await self._stream(session, url, remote, part)
            if remote.sha256 is None:
                return
            digest = await asyncio.to_thread(_sha256, part)
            if digest != remote.sha256:
                _remove(part)
                self.progress.bytes = self.done
                raise self._fail(
                    f"checksum mismatch (sha256 {digest}, the hub says {remote.sha256}); "
                    "the file was deleted",
                    transient=True,
                    file=remote.path,
                )

        await self._retrying(attempt)
        part.replace(path)
        self.done += remote.size
        self.progress.bytes = self.done

    async def _stream(
        self, session: aiohttp.ClientSession, url: str, remote: RemoteFile, part: Path
    ) -> None:
        """Fetch the rest of one file into its part (Range from the part's size)."""
        offset = _size_of(part) or 0
        if offset > remote.size:
            _remove(part)
            offset = 0
        self.progress.bytes = self.done + offset
        if offset == remote.size:
            return
        headers = self._headers()
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with session.get(url, headers=headers) as resp:
                if resp.status == 416:  # the part is not a prefix of this file: start again
                    _remove(part)
                    raise self._fail(
                        "the server refused to resume", transient=True, file=remote.path
                    )
                await self._check(resp, remote.path)
                if offset and resp.status != 206:  # Range ignored: the whole file comes
                    offset = 0
                    self.progress.bytes = self.done
                await self._write(resp, part, append=offset > 0)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise self._fail(_cause(err), transient=True, file=remote.path) from err
        got = _size_of(part) or 0
        if got != remote.size:
            if got > remote.size:
                _remove(part)
            raise self._fail(
                f"the connection ended after {_size(got)} of {_size(remote.size)}",
                transient=True,
                file=remote.path,
            )

    async def _write(self, resp: aiohttp.ClientResponse, part: Path, *, append: bool) -> None:
        buffer = bytearray()
        with part.open("ab" if append else "wb") as out:
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    buffer += chunk
                    self.progress.bytes += len(chunk)
                    if len(buffer) >= CHUNK:
                        data = bytes(buffer)
                        buffer.clear()
                        await asyncio.to_thread(
                            out.write, data
                        )  # a slow disk never stalls the loop
                    self._report()
            except BaseException:  # what arrived before a failure (or shutdown) is kept...
                with contextlib.suppress(OSError):  # ...unless the disk is what failed
                    out.write(buffer)
                raise
            out.write(buffer)

    def _report(self) -> None:
        now = time.monotonic()
        if now - self.last_log < LOG_INTERVAL_S:
            return
        self.last_log = now
        progress = self.progress
        rate = progress.rate(now)
        facts = [f"{_size(progress.bytes)} of {_size(progress.total or 0)} ({progress.percent} %)"]
        if rate:
            facts.append(f"{_size(rate)}/s")
            if progress.total:
                facts.append(f"about {_duration((progress.total - progress.bytes) / rate)} left")
        _LOGGER.info(
            "%s: downloading %s: %s", self.weights.model, self.weights.repo, ", ".join(facts)
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _cause(err: BaseException) -> str:
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot connect ({err.os_error.strerror or err.os_error})"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ValueError):
        return f"the hub API did not answer JSON ({err})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
