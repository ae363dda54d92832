"""tiny.build_once: the cache every tiny model and every bench model goes through. A build is
reused while its stamp matches TINY_VERSION, built again when the recipes change, and a build
that fails midway leaves nothing a later run would trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_server.models import tiny


def test_a_build_is_reused_until_the_recipes_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Path] = []

    def build(folder: Path) -> None:
        built.append(folder)
        (folder / "weights").write_text(f"build {len(built)}")

    target = tmp_path / "cache" / "model"
    assert tiny.build_once(target, build, "model") == target
    assert tiny.build_once(target, build, "model") == target
    assert len(built) == 1 and (target / "weights").read_text() == "build 1"
    monkeypatch.setattr(tiny, "TINY_VERSION", tiny.TINY_VERSION + 1)  # a recipe changed
    tiny.build_once(target, build, "model")
    assert len(built) == 2 and (target / "weights").read_text() == "build 2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]  # no scratch left


def test_a_folder_without_a_stamp_is_built_again(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("from an older bench, before stamps")
    tiny.build_once(target, lambda folder: (folder / "weights").write_text("new"), "model")
    assert (target / "weights").read_text() == "new"
    assert tiny.stamp_ok(target)


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def crash(folder: Path) -> None:
        (folder / "weights").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        tiny.build_once(tmp_path / "model", crash, "model")
    assert list(tmp_path.iterdir()) == []
