"""The add-on image's sources: a self-contained build context (no podman needed).

Supervisor builds with addon/ as the Docker build context, so nothing outside it can be copied;
docker-compose.yml builds the standalone image from the same folder. `make addon-check`
(scripts/addon_check.py) builds and runs both; these tests guard what it relies on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("addon_check", ROOT / "scripts/addon_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ac = load_script()
DOCKERFILE = (ADDON / "Dockerfile").read_text()


def yaml_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


# COPY/ADD sources ----------------------------------------------------------------------------


def test_every_copy_source_is_inside_the_addon_folder() -> None:
    sources = ac.copy_sources(DOCKERFILE)
    assert {"constraints.txt", "wheels/", "healthcheck.py"} <= set(sources)
    assert ac.sources_outside(DOCKERFILE, ADDON) == []


@pytest.mark.parametrize(
    "instruction",
    [
        "COPY ../ai_server ai_server",
        "COPY constraints/server.txt constraints/server.txt",  # the old root-context Dockerfile
        "COPY pyproject.toml README.md ./",
        'COPY ["../pyproject.toml", "/x"]',
        "COPY --chown=0:0 ../client /opt/client",
        "ADD https://example.com/a.tar.gz /opt/",
        "COPY /etc/passwd /x",
        "COPY wheels/../../ai_server /x",
        "COPY healthcheck.py \\\n    ../README.md /opt/",
    ],
)
def test_a_source_outside_the_folder_is_found(instruction: str) -> None:
    text = f'FROM debian\n# a comment\n{instruction}\nCMD ["x"]\n'
    assert ac.sources_outside(text, ADDON) != []


@pytest.mark.parametrize(
    "instruction",
    [
        "COPY wheels/ /tmp/wheels/",
        "COPY --from=build /opt/hsi /opt/hsi",
        'COPY ["healthcheck.py", "constraints.txt", "/opt/"]',
        "ADD --chmod=644 config.yaml /etc/x.yaml",
    ],
)
def test_sources_inside_the_folder_pass(instruction: str) -> None:
    assert ac.sources_outside(f"FROM debian\n{instruction}\n", ADDON) == []


def test_instructions_join_continuations_and_skip_comments() -> None:
    text = 'FROM a\nRUN one \\\n    # inside\n    && two\n\n# out\nCMD ["x"]\n'
    assert ac.dockerfile_instructions(text) == [
        ("FROM", "a"),
        ("RUN", "one && two"),
        ("CMD", '["x"]'),
    ]


# The Dockerfile's conventions --------------------------------------------------------------------


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for keyword, rest in ac.dockerfile_instructions(DOCKERFILE):
        found.setdefault(keyword, []).append(rest)
    return found


def test_supervisor_build_args_and_entry() -> None:
    found = instructions()
    args = {a.split("=")[0] for a in found["ARG"]}
    assert {"BUILD_FROM", "BUILD_ARCH", "BUILD_VERSION", "TORCH_INDEX"} <= args
    assert found["FROM"] == ["${BUILD_FROM}"]
    assert found["EXPOSE"] == ["8090"]
    assert len(found["HEALTHCHECK"]) == 1 and "/opt/hsi/healthcheck.py" in found["HEALTHCHECK"][0]
    # Exec form: no shell between tini (PID 1) and the server, so SIGTERM reaches it.
    assert found["ENTRYPOINT"] == ['["/usr/bin/tini", "-s", "--"]']
    assert found["CMD"] == ['["hsi-ai-server", "serve"]']
    assert '"hsi-ai-server==${BUILD_VERSION}"' in DOCKERFILE


def test_the_base_is_debian_everywhere() -> None:
    """build.yaml's bases, the Dockerfile's default (compose) and the check's local base agree:
    Debian bookworm (glibc: torch has no musl wheels; python3 is 3.11, the tested interpreter).
    Fully qualified: Supervisor's image pattern wants namespace/name."""
    default = re.search(r"^ARG BUILD_FROM=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert default is not None
    build = yaml_file(ADDON / "build.yaml")
    assert set(build["build_from"]) == set(yaml_file(ADDON / "config.yaml")["arch"])
    assert set(build["build_from"].values()) == {default.group(1)}
    assert re.fullmatch(rf"docker\.io/library/debian:{ac.SUITE}(-slim)?", default.group(1))
    assert ac.BASE_IMAGE.endswith(f":{ac.SUITE}")


def test_torch_pins_and_constraints_are_the_server_venvs() -> None:
    assert ac.constraints_body(ADDON / "constraints.txt") == ac.SERVER_CONSTRAINTS.read_text(), (
        "addon/constraints.txt is stale: make addon-constraints"
    )
    pins = dict(
        re.findall(r"^(torch|torchvision)==(\S+)$", ac.SERVER_CONSTRAINTS.read_text(), re.M)
    )
    assert f"torch=={pins['torch']} torchvision=={pins['torchvision']}" in DOCKERFILE


def test_only_the_wheelhouse_placeholder_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "addon/wheels"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked == ["addon/wheels/README.md"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "addon/wheels/hsi_ai_server-0.1.0-py3-none-any.whl"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0


# docker-compose.yml --------------------------------------------------------------------------


def test_compose_builds_the_same_image_from_the_addon_folder() -> None:
    context, dockerfile, args = ac.compose_build({})
    assert context == ADDON.resolve()
    assert dockerfile == (ADDON / "Dockerfile").resolve()
    assert args["BUILD_VERSION"] == yaml_file(ADDON / "config.yaml")["version"]
    assert re.match(r"https://download\.pytorch\.org/whl/cu\d+$", args["TORCH_INDEX"])
    assert ac.compose_build({"TORCH_INDEX": ac.PYPI})[2]["TORCH_INDEX"] == ac.PYPI
    assert "BUILD_FROM" not in args  # the Dockerfile's default: the add-on's base


def test_compose_interpolation() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert ac.interpolate("${A}-${B:-two}-${EMPTY:-3}", env) == "1-two-3"
    with pytest.raises(ac.CheckError, match="set it"):
        ac.interpolate("${B:?set it}", env)


# The check's own helpers -----------------------------------------------------------------------


def test_debian_mirror_is_the_archive_not_security(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a snapshot\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert ac.debian_mirror(sources) == "http://mirror.example/debian"
    sources.write_text("Types: deb-src\nURIs: http://x/debian\nSuites: bookworm\n")
    with pytest.raises(ac.CheckError):
        ac.debian_mirror(sources)


def test_detect_answer_shape() -> None:
    good = {
        "detections": [{"class": "person", "confidence": 0.7, "bbox": dict.fromkeys("xy", 1)}],
        "inference_time_ms": 12.5,
        "image_width": 64,
        "image_height": 48,
    }
    good["detections"][0]["bbox"] |= {"width": 3, "height": 4}
    assert ac.check_detect_answer(good, (64, 48)).startswith("1 detections")
    with pytest.raises(ac.CheckError):
        ac.check_detect_answer(good, (48, 64))
    with pytest.raises(ac.CheckError):
        ac.check_detect_answer(good | {"detections": [{"class": "person"}]}, (64, 48))


# The image's HEALTHCHECK script --------------------------------------------------------------


async def healthcheck(port: int) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HSI_")}
    env |= {"PORT": str(port), "HOST": "0.0.0.0", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ADDON / "healthcheck.py"), env=env, stdout=asyncio.subprocess.PIPE
    )
    await process.communicate()
    assert process.returncode is not None
    return process.returncode


async def test_healthcheck_script(aiohttp_server: Any, unused_tcp_port: int) -> None:
    answers = {"code": 200}

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "loading"}, status=answers["code"])

    app = web.Application()
    app.router.add_get("/health", health)
    server = await aiohttp_server(app)
    assert await healthcheck(server.port) == 0  # up (also while models load)
    answers["code"] = 503
    assert await healthcheck(server.port) == 1
    assert await healthcheck(unused_tcp_port) == 1  # nothing listening
