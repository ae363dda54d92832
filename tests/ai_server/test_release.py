"""Release: one version everywhere (scripts/check_versions.py); the workflows load and are sane."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_versions.py"
WORKFLOWS = ROOT / ".github" / "workflows"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_versions", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cv = load_script()
FILES = [
    cv.SERVER_INIT,
    cv.CLIENT_INIT,
    cv.MANIFEST,
    cv.ADDON_CONFIG,
    cv.COMPOSE,
    cv.ROOT_PYPROJECT,
    cv.CLIENT_PYPROJECT,
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the files the check reads."""
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path


def current_version() -> str:
    from ai_server import __version__

    return __version__


def test_repository_versions_agree() -> None:
    version, errors = cv.check(ROOT)
    assert errors == []
    assert version == current_version()
    found, _ = cv.versions(ROOT)
    assert set(found) == {
        cv.SERVER_INIT,
        cv.CLIENT_INIT,
        cv.MANIFEST,
        cv.ADDON_CONFIG,
        cv.COMPOSE,
    }
    # What the release workflow runs for this version's tag.
    assert cv.check(ROOT, f"v{version}") == (version, [])


def test_script_command_line() -> None:
    tag = f"v{current_version()}"
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "--tag", tag], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "agree" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--tag", "v999.0.0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert cv.ADDON_CONFIG in bad.stderr and "v999.0.0" in bad.stderr


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "rel", [cv.SERVER_INIT, cv.CLIENT_INIT, cv.MANIFEST, cv.ADDON_CONFIG, cv.COMPOSE]
)
def test_one_version_bumped_is_named(repo: Path, rel: str) -> None:
    version = current_version()
    replace(repo / rel, f'"{version}"', '"9.9.9"')
    expected, errors = cv.check(repo)
    assert expected == version  # the other files outvote it
    assert errors == [f"{rel}: version '9.9.9' differs from '{version}' (the other files)"]
    assert cv.main(["--root", str(repo)]) == 1
    # Against a tag, the tag's version is the one that counts.
    _, errors = cv.check(repo, "v9.9.9")
    assert len(errors) == 6  # the four other files + the two hsi-client pins
    assert not any(e.startswith(f"{rel}: version") for e in errors)


def test_tag_must_match(repo: Path) -> None:
    version = current_version()
    _, errors = cv.check(repo, "v0.0.1")
    assert {e.split(":")[0] for e in errors} == {
        cv.SERVER_INIT,
        cv.CLIENT_INIT,
        cv.MANIFEST,
        cv.ADDON_CONFIG,
        cv.COMPOSE,
        cv.ROOT_PYPROJECT,
    }
    assert cv.check(repo, "release-1")[1] == ["tag 'release-1' is not a release tag vX.Y.Z"]
    assert cv.check(repo, f"v{version}") == (version, [])


def manifest(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / cv.MANIFEST).read_text())
    return data


def test_manifest_must_pin_the_client(repo: Path) -> None:
    version = current_version()
    for requirements, message in [
        ([], "requirements does not require hsi-client"),
        (["hsi-client>=0.1"], "has 'hsi-client>=0.1'; it must pin exactly"),
        ([f"hsi_client=={version}", "hsi-client==0.0.9"], "it must pin exactly"),
    ]:
        data = manifest(repo)
        data["requirements"] = requirements
        (repo / cv.MANIFEST).write_text(json.dumps(data))
        _, errors = cv.check(repo)
        assert len(errors) == 1
        assert errors[0].startswith(f"{cv.MANIFEST}: ") and message in errors[0]


def test_server_must_pin_the_client(repo: Path) -> None:
    version = current_version()
    replace(repo / cv.ROOT_PYPROJECT, f'"hsi-client=={version}"', '"hsi-client>=0.1"')
    _, errors = cv.check(repo)
    assert len(errors) == 1 and errors[0].startswith(f"{cv.ROOT_PYPROJECT}: ")


def test_unquoted_and_static_versions(repo: Path) -> None:
    version = current_version()
    replace(repo / cv.ADDON_CONFIG, f'version: "{version}"', "version: 1.0")
    replace(repo / cv.CLIENT_PYPROJECT, "[project]\n", '[project]\nversion = "0.0.2"\n')
    _, errors = cv.check(repo)
    assert errors == [
        f"{cv.ADDON_CONFIG}: version 1.0 is not a string (quote it)",
        f"{cv.CLIENT_PYPROJECT}: version '0.0.2' differs from '{version}' (the other files)",
    ]
    (repo / cv.CLIENT_INIT).write_text("VERSION = '1'\n")
    _, errors = cv.check(repo)
    assert errors[0].startswith(f"{cv.CLIENT_INIT}: cannot read its version")


# Workflows --------------------------------------------------------------------------------


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def all_needs(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job that must finish before `name` starts."""
    seen: set[str] = set()
    todo = needs(jobs[name])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += needs(jobs[dep])
    return seen


def run_lines(job: dict[str, Any]) -> list[str]:
    return [str(step.get("run", "")).strip() for step in job.get("steps", [])]


def uses(job: dict[str, Any]) -> list[str]:
    return [str(step["uses"]) for step in job.get("steps", []) if "uses" in step]


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_loads(path: Path) -> None:
    workflow = load_workflow(path)
    # YAML 1.1 reads the key `on` as True.
    assert "on" in workflow or True in workflow
    jobs = workflow["jobs"]
    assert jobs
    for name, job in jobs.items():
        assert "runs-on" in job, name
        assert all(dep in jobs for dep in needs(job)), name
        assert all_needs(jobs, name).isdisjoint({name}), f"{name} needs itself"


def test_release_workflow() -> None:
    workflow = load_workflow(WORKFLOWS / "release.yml")
    trigger = workflow.get("on", workflow.get(True))
    assert trigger == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}
    jobs: dict[str, Any] = workflow["jobs"]

    check = 'python scripts/check_versions.py --tag "$GITHUB_REF_NAME"'
    checkers = [n for n, job in jobs.items() if check in run_lines(job)]
    testers = [n for n, job in jobs.items() if "make test" in run_lines(job)]
    assert checkers and testers
    # make test runs where the Makefile finds both interpreters (scripts/find-python).
    for name in testers:
        (setup,) = [s for s in jobs[name]["steps"] if "setup-python" in str(s.get("uses"))]
        assert set(str(setup["with"]["python-version"]).split()) == {"3.11", "3.13"}

    publishers = {
        n: job
        for n, job in jobs.items()
        if any(u.startswith("pypa/gh-action-pypi-publish@") for u in uses(job))
    }
    assert len(publishers) == 2  # the client library and the server package
    published: dict[str, str] = {}  # artifact -> publishing job
    for name, job in publishers.items():
        before = all_needs(jobs, name)
        assert set(checkers) <= before and set(testers) <= before, name
        assert job["permissions"] == {"id-token": "write"}  # trusted publishing, no token
        assert "password" not in str(job)
        (download,) = [s for s in job["steps"] if "download-artifact" in str(s.get("uses"))]
        artifact = download["with"]["name"]
        published[artifact] = name
        # The job that uploads it builds it (sdist + wheel) and also runs before the publisher.
        (builder,) = [n for n in jobs if artifact in uploads(jobs[n])]
        assert builder in before
        assert any(line.startswith("python -m build") for line in run_lines(jobs[builder]))
    assert set(published) == {"client-dist", "server-dist"}
    # The server pins hsi-client==VERSION: the client reaches PyPI first.
    assert published["client-dist"] in all_needs(jobs, published["server-dist"])


def uploads(job: dict[str, Any]) -> list[str]:
    return [
        str(step["with"]["name"])
        for step in job.get("steps", [])
        if "upload-artifact" in str(step.get("uses"))
    ]
