"""Settings: sources, precedence, validation that names the bad setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hsi_client import DETECTOR_DEFAULT_CLASSES

from ai_server.config import ConfigError, load_settings


def settings(tmp_path: Path, env=None, cli=None, options=None):
    options_path = tmp_path / "options.json"
    if options is not None:
        options_path.write_text(json.dumps(options))
    return load_settings(env=env or {}, cli=cli, options_path=options_path)


def test_defaults_follow_the_original_system(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert (s.host, s.port, s.confidence, s.api_key) == ("0.0.0.0", 8090, 0.5, None)
    assert s.classes == DETECTOR_DEFAULT_CLASSES
    assert s.max_body_bytes == 10 * 1024 * 1024
    assert s.profile == "default" and s.device == "auto"
    assert not s.tls_enabled


def test_original_environment_names(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        env={
            "RTDETR_MODEL_PATH": "/models/rtdetr",
            "RTDETR_CONFIDENCE": "0.35",
            "HOST": "127.0.0.1",
            "PORT": "9000",
            "HSI_API_KEY": "s3cr3t-key",
            "HSI_DEVICE": "cuda:1",
            "HSI_DETECTOR_CLASSES": "Person, car",
            "HSI_BATCH_MAX_SIZE": "16",
            "HSI_BATCH_MAX_WAIT_MS": "5",
            "HSI_PROFILE": "TINY",
            "HSI_WARMUP": "off",
            "HSI_PRELOAD": "",
        },
    )
    assert s.detector_path == "/models/rtdetr"
    assert (s.confidence, s.host, s.port, s.api_key, s.device) == (
        0.35,
        "127.0.0.1",
        9000,
        "s3cr3t-key",
        "cuda:1",
    )
    assert s.classes == ("person", "car")
    assert (s.batch_max_size, s.batch_max_wait_ms, s.profile) == (16, 5.0, "tiny")
    assert s.warmup is False and s.preload == ()
    assert "s3cr3t-key" not in repr(s)  # the key never reaches logs through repr


def test_batch_size_is_auto_by_device(tmp_path: Path) -> None:
    auto = settings(tmp_path)
    assert auto.batch_max_size is None
    assert auto.batch_size(cuda=False, cpu_default=1) == 1
    assert auto.batch_size(cuda=False, cpu_default=8) == 8
    assert auto.batch_size(cuda=True, cpu_default=1) == 16
    fixed = settings(tmp_path, env={"HSI_BATCH_MAX_SIZE": "4"})
    assert fixed.batch_size(cuda=False, cpu_default=1) == 4
    assert fixed.batch_size(cuda=True, cpu_default=8) == 4
    assert settings(tmp_path, env={"HSI_BATCH_MAX_SIZE": "AUTO"}).batch_max_size is None
    with pytest.raises(ConfigError, match="between 1 and 256, or auto"):
        settings(tmp_path, env={"HSI_BATCH_MAX_SIZE": "many"})


def test_all_classes(tmp_path: Path) -> None:
    assert settings(tmp_path, env={"HSI_DETECTOR_CLASSES": "all"}).classes is None


def test_precedence_options_then_env_then_cli(tmp_path: Path) -> None:
    options = {"port": 8001, "confidence": 0.7, "api_key": "from-options", "classes": ["dog"]}
    assert settings(tmp_path, options=options).port == 8001
    assert settings(tmp_path, options=options).classes == ("dog",)
    s = settings(tmp_path, options=options, env={"PORT": "8002"}, cli={"--port": "8003"})
    assert (s.port, s.confidence, s.api_key) == (8003, 0.7, "from-options")
    assert settings(tmp_path, options=options, env={"PORT": "8002"}).port == 8002


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"RTDETR_CONFIDENCE": "1.5"}, "RTDETR_CONFIDENCE"),
        ({"RTDETR_CONFIDENCE": "high"}, "RTDETR_CONFIDENCE"),
        ({"HSI_DEVICE": "tpu"}, "HSI_DEVICE"),
        ({"HSI_PROFILE": "huge"}, "HSI_PROFILE"),
        ({"HSI_BATCH_MAX_SIZE": "0"}, "HSI_BATCH_MAX_SIZE"),
        ({"HSI_WARMUP": "maybe"}, "HSI_WARMUP"),
        ({"HSI_DETECTOR_CLASSES": " , "}, "HSI_DETECTOR_CLASSES"),
        ({"HSI_MAX_BODY_MB": "-1"}, "HSI_MAX_BODY_MB"),
        ({"HSI_LOG_LEVEL": "loud"}, "HSI_LOG_LEVEL"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path: Path, env, named: str) -> None:
    with pytest.raises(ConfigError, match=f"Invalid setting {named}="):
        settings(tmp_path, env=env)


def test_tls_needs_both_files_that_exist(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="HSI_TLS_CERT and HSI_TLS_KEY must be set together"):
        settings(tmp_path, env={"HSI_TLS_CERT": str(cert)})
    with pytest.raises(ConfigError, match="HSI_TLS_KEY: file not found"):
        settings(tmp_path, env={"HSI_TLS_CERT": str(cert), "HSI_TLS_KEY": str(tmp_path / "no")})


def test_addon_options_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown add-on option"):
        settings(tmp_path, options={"prot": 1})
    (tmp_path / "options.json").write_text("{oops")
    with pytest.raises(ConfigError, match="Invalid add-on options file"):
        load_settings(env={}, options_path=tmp_path / "options.json")
    with pytest.raises(ConfigError, match="Invalid setting port="):
        settings(tmp_path, options={"port": "x"})


def test_cli_fails_fast_naming_the_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ai_server", "serve", "--port", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "configuration error: Invalid setting --port='nope'" in result.stderr


def test_cli_refuses_cuda_without_a_gpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():  # on a GPU host this setting is valid
        return
    result = subprocess.run(
        [sys.executable, "-m", "ai_server", "serve", "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "HSI_DEVICE='cuda': CUDA is not available" in result.stderr
