"""HSI_RUNTIME: ONNX Runtime and OpenVINO answer as torch does, and the graph cache behaves.

Why the detectors here are re-initialised ("well separated"): transformers initialises every
BatchNorm weight of RT-DETRv2 from N(0, 0.02) like a linear layer's, so each conv block of a
random-weight model shrinks its activations ~50x; the encoder's output is ~1e-7 and all 8,400
anchor scores of the two-stage query selection are equal to 7 digits (measured on the tiny
profile's detector: every score -4.3820267). `torch.topk` among exact ties picks queries in an
order no runtime promises, so torch and ONNX Runtime decode different queries and report
different boxes (the probe of issue 12 saw logits 3.5 apart) although every operator agrees to
~1e-6. That is a property of the random weights, not of the runtimes: trained checkpoints have
BatchNorm weights near 1. With BatchNorm weights 1 and variance-preserving (Kaiming / Xavier)
initialisation, seeded, the selection scores are separated by ~1e-3 at the top-k boundary while
the runtimes differ by ~1e-5, and the detections agree exactly: same labels, boxes within 1 px,
scores within 1e-3 (fp32), for the tiny and for the real-size r18vd architecture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from ai_server.config import ConfigError, Settings, load_settings
from ai_server.models import tiny
from ai_server.models.clip import Clip, ClipItem
from ai_server.models.detector import Detection, Detector, DetectRequest
from ai_server.runtime import accel
from ai_server.runtime.accel import AccelOptions, intel_cpu, resolve_runtime
from ai_server.runtime.devices import DeviceInfo

from .conftest import image_bytes
from .test_server_process import processes, start_server, wait_healthy  # noqa: F401

CPU = DeviceInfo("cpu", torch.float32)
RUNTIMES = ("onnxruntime", "openvino")


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-separated")
    tiny.build_detector(root / "random")
    return tiny.separate_scores(root / "random", root / "separated")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache (HSI_CACHE_DIR/onnx) for the module: the runtimes share each export."""
    return tmp_path_factory.mktemp("cache") / "onnx"


def frames() -> list[Image.Image]:
    """A 640x480 picture with structure and a 300x200 one of noise (different aspect ratios)."""
    rng = np.random.default_rng(0)
    scene = Image.new("RGB", (640, 480), (90, 140, 60))
    scene.paste((250, 250, 250), (160, 120, 320, 360))
    scene.paste((20, 20, 180), (400, 60, 600, 200))
    noise = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    return [scene, noise]


def detect(detector: Detector, images: list[Image.Image]) -> list[list[Detection]]:
    return detector.detect([DetectRequest(image, 0.0, None) for image in images])


def load(source: Path, runtime: str, cache: Path, **kwargs: Any) -> Detector:
    detector = Detector(str(source), CPU, accel=AccelOptions(runtime, cache), **kwargs)
    detector.load()
    return detector


def assert_agree(expected: list[list[Detection]], got: list[list[Detection]]) -> None:
    """Same detections per image: labels, boxes within 1 px, scores within 1e-3 (fp32)."""
    assert len(expected) == len(got)
    for want, have in zip(expected, got, strict=True):
        assert len(want) == len(have) > 0
        unmatched = list(have)
        for a in want:  # each expected detection pairs with one equal detection, in any order
            match = next((b for b in unmatched if _same(a, b)), None)
            assert match is not None, f"no match for {a} in {unmatched}"
            unmatched.remove(match)


def _same(a: Detection, b: Detection) -> bool:
    boxes = ((a.x, b.x), (a.y, b.y), (a.width, b.width), (a.height, b.height))
    return (
        a.label == b.label
        and abs(a.confidence - b.confidence) <= 1e-3
        and all(abs(p - q) <= 1.0 for p, q in boxes)
    )


@pytest.fixture(scope="module")
def torch_detections(tiny_detector: Path, graphs: Path) -> list[list[Detection]]:
    return detect(load(tiny_detector, "torch", graphs), frames())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tiny_detector_agrees_with_torch(
    tiny_detector: Path, graphs: Path, torch_detections: list[list[Detection]], runtime: str
) -> None:
    expected = torch_detections
    detector = load(tiny_detector, runtime, graphs)
    assert detector.runtime == runtime
    assert detector.info()["runtime"] == runtime
    assert_agree(expected, detect(detector, frames()))
    # One image at a time (the CPU batch) gives the same as the batch of two.
    assert_agree(expected[1:], detect(detector, frames()[1:]))


def test_r18vd_agrees_with_torch(tmp_path: Path) -> None:
    """The real-size r18vd architecture (26.5 M parameters, 300 queries), both runtimes."""
    tiny.build_detector_r18vd(tmp_path / "random")
    source = tiny.separate_scores(tmp_path / "random", tmp_path / "separated")
    image = frames()[:1]
    expected = detect(load(source, "torch", tmp_path), image)
    for runtime in RUNTIMES:
        assert_agree(expected, detect(load(source, runtime, tmp_path), image))
    assert len(list(tmp_path.glob("detector-640-*.onnx"))) == 1  # exported once, for both


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clip_image_embeddings_agree_with_torch(
    model_cache: Path, graphs: Path, runtime: str
) -> None:
    source = tiny.make_tiny_models(model_cache / "tiny", ["clip"])["clip"]
    items = [ClipItem(image=image) for image in frames()] + [ClipItem(text="a red car")]
    reference = Clip(str(source), CPU)
    reference.load()
    clip = Clip(str(source), CPU, accel=AccelOptions(runtime, graphs))
    clip.load()
    assert clip.runtime == runtime
    assert clip.info()["runtime"] == runtime
    for want, have in zip(reference.embed(items), clip.embed(items), strict=True):
        assert float(want @ have) >= 0.9999  # both unit vectors: the cosine


def stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


def test_graph_cache_reuse_size_change_and_corruption(
    tiny_detector: Path, graphs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load(tiny_detector, "onnxruntime", graphs)  # 640 px: exported here or by a test above
    (graph,) = graphs.glob("detector-640-*.onnx")
    before = stat(graph)
    again = load(tiny_detector, "onnxruntime", graphs)
    assert again._graph is not None and not again._graph.exported  # the cache served
    assert stat(graph) == before

    # Another input size (one no other test uses) is another graph, exported now; the first
    # stays for the old setting.
    small = load(tiny_detector, "onnxruntime", graphs, size=256)
    assert small._graph is not None and small._graph.exported
    (resized,) = graphs.glob("detector-256-*.onnx")
    assert stat(graph) == before

    # A cached file the runtime rejects (here cut in half, as a full disk would) is exported
    # again, and the detector answers with the runtime as before.
    expected = detect(small, frames())
    resized.write_bytes(resized.read_bytes()[: resized.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        repaired = load(tiny_detector, "onnxruntime", graphs, size=256)
    assert "does not load" in caplog.text
    assert repaired.runtime == "onnxruntime"
    assert repaired._graph is not None and repaired._graph.exported
    onnx.checker.check_model(str(resized))
    assert_agree(expected, detect(repaired, frames()))
    assert not list(graphs.glob("*.part"))  # no export leftovers


def test_input_size_changes_tensor_and_boxes_stay_in_image_pixels(
    tiny_detector: Path, graphs: Path
) -> None:
    detector = load(tiny_detector, "openvino", graphs, size=320)
    assert detector.info()["input_size"] == 320
    image = Image.new("RGB", (1280, 720), (120, 80, 40))
    image.paste((250, 250, 250), (100, 100, 900, 600))
    pixels = detector._processor(images=[image], return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 320, 320)
    assert detector._graph is not None
    dims = onnx.load(str(detector._graph.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 320, 320]
    (found,) = detect(detector, [image])
    assert found
    for d in found:
        assert 0 <= d.x < d.x + d.width <= 1280
        assert 0 <= d.y < d.y + d.height <= 720
    # In the 320 px input frame no box could reach past 320: these are the picture's pixels.
    assert max(d.x + d.width for d in found) > 320
    assert_agree(detect(load(tiny_detector, "torch", graphs, size=320), [image]), [found])


def test_unusable_graph_cache_falls_back_to_torch_logged_once(
    tiny_detector: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real failure: the graph folder cannot be made (a file is in its place)."""
    blocked = tmp_path / "onnx"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        detector = load(tiny_detector, "openvino", blocked, size=320)
    assert detector.runtime == "torch"
    info = detector.info()
    assert info["runtime"] == "torch"
    assert "graph cache" in info["runtime_fallback"]
    image = frames()[1:]
    got = detect(detector, image)
    assert_agree(detect(load(tiny_detector, "torch", tmp_path, size=320), image), got)
    assert len([r for r in caplog.records if "torch serves" in r.getMessage()]) == 1


@pytest.fixture
def no_runtime_env() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in ("HSI_RUNTIME", "HSI_DETECTOR_SIZE") if k in os.environ}
    yield
    os.environ.update(saved)


async def test_server_process_detects_as_torch_does(
    tiny_detector: Path,
    graphs: Path,
    tmp_path: Path,
    processes: list[Any],  # noqa: F811
    no_runtime_env: None,
) -> None:
    """`serve --profile tiny` with HSI_RUNTIME=onnxruntime: /detect answers as torch does.

    HSI_CACHE_DIR holds the module's graph cache: the graph exported above serves (same
    weights, same size, same key), so the process only compiles it.
    """
    process, port = start_server(
        tmp_path,
        graphs.parent,
        HSI_RUNTIME="onnxruntime",
        RTDETR_MODEL_PATH=str(tiny_detector),
        HSI_PRELOAD="detector",
    )
    processes.append(process)
    base = f"http://127.0.0.1:{port}"
    health = await wait_healthy(base, process)
    assert health["models"]["detector"]["runtime"] == "onnxruntime"
    body = image_bytes(640, 480)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/detect",
            data=body,
            params={"confidence": "0", "classes": "all"},
            headers={"Content-Type": "image/jpeg"},
        ) as response,
    ):
        assert response.status == 200
        served = (await response.json())["detections"]
    import io

    image = Image.open(io.BytesIO(body)).convert("RGB")
    (expected,) = detect(load(tiny_detector, "torch", tmp_path), [image])
    assert_agree(
        [expected],
        [
            [
                Detection(
                    d["class"],
                    d["confidence"],
                    *(d["bbox"][k] for k in "xy"),
                    d["bbox"]["width"],
                    d["bbox"]["height"],
                )
                for d in served
            ]
        ],
    )


def test_runtime_and_size_settings(tmp_path: Path) -> None:
    no_options = tmp_path / "options.json"  # not the host's add-on options
    settings = load_settings(
        env={"HSI_RUNTIME": "OpenVINO", "HSI_DETECTOR_SIZE": "480"}, options_path=no_options
    )
    assert (settings.runtime, settings.detector_size) == ("openvino", 480)
    assert (Settings().runtime, Settings().detector_size) == ("auto", 640)
    for env in (
        {"HSI_RUNTIME": "tensorrt"},
        {"HSI_DETECTOR_SIZE": "500"},
        {"HSI_DETECTOR_SIZE": "96"},
    ):
        with pytest.raises(ConfigError, match=next(iter(env))):
            load_settings(env=env, options_path=no_options)


def test_auto_runtime_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: OpenVINO where it sees an Intel GPU, else ONNX Runtime; torch on CUDA, saying why
    when another runtime was asked for."""
    gpu = intel_cpu() and accel.openvino_gpu()
    assert resolve_runtime("auto", CPU) == (("openvino" if gpu else "onnxruntime"), None)
    monkeypatch.setattr(accel, "intel_cpu", lambda: True)
    monkeypatch.setattr(accel, "openvino_gpu", lambda: True)
    assert resolve_runtime("auto", CPU) == ("openvino", None)
    monkeypatch.setattr(accel, "openvino_gpu", lambda: False)
    assert resolve_runtime("auto", CPU) == ("onnxruntime", None)
    monkeypatch.setattr(accel, "available", lambda runtime: runtime != "onnxruntime")
    assert resolve_runtime("auto", CPU) == ("openvino", None)
    monkeypatch.undo()
    assert resolve_runtime("onnxruntime", CPU) == ("onnxruntime", None)
    assert resolve_runtime("torch", CPU) == ("torch", None)
    cuda = DeviceInfo("cuda:0", torch.float16)
    assert resolve_runtime("auto", cuda) == ("torch", None)
    runtime, reason = resolve_runtime("openvino", cuda)
    assert runtime == "torch" and reason and "CUDA" in reason
