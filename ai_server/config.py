"""Server settings: one table of settings read from defaults, add-on options, environment and CLI.

Precedence, lowest first: built-in defaults < `/data/options.json` (the HA add-on's options) <
environment variables < command-line flags. Every value is parsed and validated here, so a bad
setting stops the server at start with a message that names it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hsi_client import DETECTOR_DEFAULT_CLASSES

ADDON_OPTIONS_PATH = Path("/data/options.json")
PROFILES = ("default", "tiny", "scripted")
RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")  # HSI_RUNTIME (runtime/accel.py)
# The scripted profile (tests only) has no LLM; its models load in no time, so all start loaded.
SCRIPTED_PRELOAD = ("detector", "clip", "florence")
GPU_BATCH = 16
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the setting."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hsi"


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8090
    api_key: str | None = field(default=None, repr=False)
    profile: str = "default"
    device: str = "auto"
    cache_dir: Path = field(default_factory=_default_cache_dir)
    models_dir: Path | None = None  # None: cache_dir / "models"
    offline: bool = False
    download_all: bool = True
    detector_path: str | None = None
    confidence: float = 0.5
    classes: tuple[str, ...] | None = DETECTOR_DEFAULT_CLASSES
    batch_max_size: int | None = None  # None: auto, see batch_size()
    batch_max_wait_ms: float = 2.0
    queue_max: int = 64
    max_body_mb: float = 10.0
    max_image_pixels: int = 40_000_000
    max_batch_images: int = 32
    tls_cert: Path | None = None
    tls_key: Path | None = None
    torch_threads: int | None = None
    runtime: str = "auto"
    detector_size: int = 640
    warmup: bool = True
    preload: tuple[str, ...] = ("detector", "llm")
    florence_path: str | None = None
    clip_path: str | None = None
    florence_max_new_tokens: int = 256
    florence_num_beams: int = 1
    labels_path: Path | None = None
    max_vram_gb: float | None = None
    max_ram_gb: float | None = None
    model_idle_s: float = 0.0
    malloc_trim_s: float = 10.0
    log_level: str = "INFO"
    # LLM risk reasoning: in-process llama.cpp, or a remote OpenAI-compatible server.
    llm_path: str | None = None
    llm_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str | None = None
    llm_context_size: int = 4096
    llm_gpu_layers: int = 99
    llm_slots: int = 2
    llm_threads: int | None = None
    llm_timeout: float = 60.0
    llm_pause_s: float = 600.0
    llm_prefix_cache: bool = True
    analyze_max_frames: int = 16
    plate_reads: int = 2

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def batch_size(self, *, cuda: bool, cpu_default: int) -> int:
        """Largest batch per model call: the setting, else 16 on CUDA and the model's own CPU
        default (measured per model in docs/benchmarks.md: on 2 cores batching costs the
        detector ~40 % and Florence-2 ~10 % of their throughput, and gives CLIP ~60 % more)."""
        if self.batch_max_size is not None:
            return self.batch_max_size
        return GPU_BATCH if cuda else cpu_default

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert is not None

    def validate(self) -> Settings:
        """Cross-field checks; single values are checked by their parsers."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("HSI_TLS_CERT and HSI_TLS_KEY must be set together")
        for name, path in (("HSI_TLS_CERT", self.tls_cert), ("HSI_TLS_KEY", self.tls_key)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{name}: file not found: {path}")
        return self


# --- parsers: each takes the raw value (str from env/CLI, JSON value from options) ---------


def _str(value: Any) -> str:
    return str(value).strip()


def _opt_str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _int_range(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be an integer between {lo} and {hi}") from None
        if not lo <= number <= hi:
            raise ValueError(f"must be an integer between {lo} and {hi}")
        return number

    return parse


def _auto_or(parse: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def parse_auto(value: Any) -> int | None:
        if str(value).strip().lower() == "auto":
            return None
        try:
            return parse(value)
        except ValueError as err:
            raise ValueError(f"{err}, or auto") from None

    return parse_auto


def _float_range(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a number between {lo:g} and {hi:g}") from None
        if not lo <= number <= hi:
            raise ValueError(f"must be a number between {lo:g} and {hi:g}")
        return number

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _device(value: Any) -> str:
    text = str(value).strip().lower()
    if not _DEVICE_RE.match(text):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return text


def _names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip().lower() for item in items if str(item).strip())


def _classes(value: Any) -> tuple[str, ...] | None:
    names = _names(value)
    if names == ("all",):
        return None
    if not names:
        raise ValueError('must be a comma-separated list of class names, or "all"')
    return names


def _opt_path(value: Any) -> Path | None:
    text = _opt_str(value)
    return Path(text).expanduser() if text else None


def _path(value: Any) -> Path:
    text = _opt_str(value)
    if not text:
        raise ValueError("must be a directory path")
    return Path(text).expanduser()


def _budget_gb(value: Any) -> float | None:
    """A memory budget in GiB; empty, 0 or "none" means no budget."""
    text = str(value).strip().lower()
    if text in {"", "0", "none"}:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError('must be a size in GiB (e.g. 6.5), or 0/"none" for no budget') from None
    if not 0 < number <= 100_000:
        raise ValueError('must be a size in GiB (e.g. 6.5), or 0/"none" for no budget')
    return number


def _opt_url(value: Any) -> str | None:
    text = _opt_str(value)
    if text is None:
        return None
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


def _detector_size(value: Any) -> int:
    """RT-DETR's feature maps are 1/32 of the input: a multiple of 32 keeps them exact."""
    number = _int_range(160, 1280)(value)
    if number % 32:
        raise ValueError("must be a multiple of 32 between 160 and 1280 (e.g. 640, 480, 320)")
    return number


def _log_level(value: Any) -> str:
    return _choice(("debug", "info", "warning", "error"))(value).upper()


@dataclass(frozen=True)
class SettingSpec:
    field: str
    env: str
    parse: Callable[[Any], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("host", "HOST", _str, "interface to listen on"),
    SettingSpec("port", "PORT", _int_range(1, 65535), "TCP port for every endpoint"),
    SettingSpec("api_key", "HSI_API_KEY", _opt_str, "require this key (Bearer or X-API-Key)"),
    SettingSpec(
        "profile",
        "HSI_PROFILE",
        _choice(PROFILES),
        "model profile: default, tiny, or scripted (tests only: docs/server.md)",
    ),
    SettingSpec("device", "HSI_DEVICE", _device, "auto, cpu, cuda or cuda:N"),
    SettingSpec(
        "cache_dir", "HSI_CACHE_DIR", _path, "cache: tiny models, downloaded ones by default"
    ),
    SettingSpec(
        "models_dir",
        "HSI_MODELS_DIR",
        _opt_path,
        "where models from the hub are downloaded (default: HSI_CACHE_DIR/models)",
    ),
    SettingSpec("offline", "HSI_OFFLINE", _bool, "never download: local model folders only"),
    SettingSpec(
        "download_all",
        "HSI_DOWNLOAD_ALL",
        _bool,
        "download every model at start (false: HSI_PRELOAD's, others on first use)",
    ),
    SettingSpec("detector_path", "RTDETR_MODEL_PATH", _opt_str, "detector folder or hub id"),
    SettingSpec("confidence", "RTDETR_CONFIDENCE", _float_range(0, 1), "detection threshold"),
    SettingSpec("classes", "HSI_DETECTOR_CLASSES", _classes, 'reported classes, or "all"'),
    SettingSpec(
        "batch_max_size",
        "HSI_BATCH_MAX_SIZE",
        _auto_or(_int_range(1, 256)),
        f"items per batch, or auto: {GPU_BATCH} on CUDA; on CPU 8 for CLIP, 1 for the others",
    ),
    SettingSpec(
        "batch_max_wait_ms", "HSI_BATCH_MAX_WAIT_MS", _float_range(0, 10_000), "batch wait (ms)"
    ),
    SettingSpec("queue_max", "HSI_QUEUE_MAX", _int_range(1, 100_000), "queued requests per model"),
    SettingSpec("max_body_mb", "HSI_MAX_BODY_MB", _float_range(0.01, 1024), "request body limit"),
    SettingSpec(
        "max_image_pixels", "HSI_MAX_IMAGE_PIXELS", _int_range(1, 1_000_000_000), "pixel limit"
    ),
    SettingSpec(
        "max_batch_images", "HSI_MAX_BATCH_IMAGES", _int_range(1, 1024), "images per request"
    ),
    SettingSpec("tls_cert", "HSI_TLS_CERT", _opt_path, "TLS certificate (PEM)"),
    SettingSpec("tls_key", "HSI_TLS_KEY", _opt_path, "TLS private key (PEM)"),
    SettingSpec(
        "torch_threads",
        "HSI_TORCH_THREADS",
        _int_range(1, 1024),
        "CPU threads for torch and HSI_RUNTIME (default: the cores)",
    ),
    SettingSpec(
        "runtime",
        "HSI_RUNTIME",
        _choice(RUNTIMES),
        "detector and CLIP image runtime on CPU: auto, torch, onnxruntime or openvino",
    ),
    SettingSpec(
        "detector_size",
        "HSI_DETECTOR_SIZE",
        _detector_size,
        "detector input size in pixels (square; 640, 480, 320: smaller is faster)",
    ),
    SettingSpec("warmup", "HSI_WARMUP", _bool, "run one inference after each load"),
    SettingSpec("preload", "HSI_PRELOAD", _names, "models loaded at start (comma list)"),
    SettingSpec("log_level", "HSI_LOG_LEVEL", _log_level, "debug, info, warning or error"),
    SettingSpec("florence_path", "FLORENCE_MODEL_PATH", _opt_str, "Florence-2 folder or hub id"),
    SettingSpec("clip_path", "CLIP_MODEL_PATH", _opt_str, "open_clip folder or hf-hub id"),
    SettingSpec(
        "florence_max_new_tokens",
        "HSI_FLORENCE_MAX_NEW_TOKENS",
        _int_range(1, 4096),
        "longest Florence-2 answer (tokens)",
    ),
    SettingSpec(
        "florence_num_beams", "HSI_FLORENCE_NUM_BEAMS", _int_range(1, 8), "Florence-2 beam width"
    ),
    SettingSpec("labels_path", "HSI_LABELS_PATH", _opt_path, "zero-shot label sets (YAML)"),
    SettingSpec("max_vram_gb", "HSI_MAX_VRAM_GB", _budget_gb, "GPU memory budget for models"),
    SettingSpec("max_ram_gb", "HSI_MAX_RAM_GB", _budget_gb, "RAM budget for models on CPU"),
    SettingSpec(
        "model_idle_s", "HSI_MODEL_IDLE_S", _float_range(0, 1e7), "unload idle models (s, 0=never)"
    ),
    SettingSpec(
        "malloc_trim_s",
        "HSI_MALLOC_TRIM_S",
        _float_range(0, 1e7),
        "return freed memory to the system every (s, 0=never)",
    ),
    SettingSpec("llm_path", "NEMOTRON_MODEL_PATH", _opt_str, "LLM: GGUF file, folder or hub id"),
    SettingSpec("llm_url", "HSI_LLM_URL", _opt_url, "remote OpenAI-compatible LLM server"),
    SettingSpec("llm_api_key", "HSI_LLM_API_KEY", _opt_str, "API key for HSI_LLM_URL"),
    SettingSpec("llm_model", "HSI_LLM_MODEL", _opt_str, "model name sent to HSI_LLM_URL"),
    SettingSpec(
        "llm_context_size", "NEMOTRON_CONTEXT_SIZE", _int_range(512, 131_072), "LLM context"
    ),
    SettingSpec("llm_gpu_layers", "NEMOTRON_GPU_LAYERS", _int_range(0, 999), "LLM GPU layers"),
    SettingSpec("llm_slots", "HSI_LLM_SLOTS", _int_range(1, 16), "parallel in-process LLM slots"),
    SettingSpec("llm_threads", "HSI_LLM_THREADS", _int_range(1, 1024), "CPU threads per slot"),
    SettingSpec("llm_timeout", "HSI_LLM_TIMEOUT", _float_range(1, 3600), "LLM call limit (s)"),
    SettingSpec(
        "llm_pause_s",
        "HSI_LLM_PAUSE_S",
        _float_range(0, 1e7),
        "rules only for this long after 2 LLM timeouts in a row (s, 0=never)",
    ),
    SettingSpec("llm_prefix_cache", "HSI_LLM_PREFIX_CACHE", _bool, "reuse the prompt KV prefix"),
    SettingSpec(
        "analyze_max_frames", "HSI_ANALYZE_MAX_FRAMES", _int_range(1, 256), "frames per /analyze"
    ),
    SettingSpec(
        "plate_reads",
        "HSI_PLATE_READS",
        _int_range(0, 256),
        "plates read per /analyze (the widest vehicles)",
    ),
)
_SPEC_BY_FIELD = {spec.field: spec for spec in SPECS}
assert set(_SPEC_BY_FIELD) == {f.name for f in fields(Settings)}


def _apply(
    values: dict[str, Any], source: Mapping[str, Any], key: Callable[[SettingSpec], str]
) -> None:
    for spec in SPECS:
        name = key(spec)
        if name not in source or source[name] is None:
            continue
        try:
            values[spec.field] = spec.parse(source[name])
        except ValueError as err:
            raise ConfigError(f"Invalid setting {name}={source[name]!r}: {err}") from None


def read_addon_options(path: Path = ADDON_OPTIONS_PATH) -> dict[str, Any]:
    """Options of the HA add-on (keys are the setting names, e.g. `api_key`), if present."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"Invalid add-on options file {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid add-on options file {path}: expected a JSON object")
    unknown = sorted(set(data) - set(_SPEC_BY_FIELD))
    if unknown:
        raise ConfigError(f"Unknown add-on option(s) in {path}: {', '.join(unknown)}")
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One CLI flag per setting, kept as raw strings so the same parsers validate them."""
    for spec in SPECS:
        parser.add_argument(
            spec.flag, dest=spec.field, default=None, help=f"{spec.help} (env {spec.env})"
        )


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    options_path: Path = ADDON_OPTIONS_PATH,
    **overrides: Any,
) -> Settings:
    """Build validated settings from every source; `overrides` are already typed (tests)."""
    values: dict[str, Any] = {}
    _apply(values, read_addon_options(options_path), lambda s: s.field)
    _apply(values, os.environ if env is None else env, lambda s: s.env)
    _apply(values, cli or {}, lambda s: s.flag)
    values.update(overrides)
    if values.get("profile") == "scripted" and "preload" not in values:
        values["preload"] = SCRIPTED_PRELOAD  # the default names the LLM, which it lacks
    return replace(Settings(), **values).validate()


def cli_values(namespace: argparse.Namespace) -> dict[str, Any]:
    """Parsed CLI flags keyed by flag name, for `load_settings(cli=...)`."""
    return {
        spec.flag: getattr(namespace, spec.field)
        for spec in SPECS
        if getattr(namespace, spec.field, None) is not None
    }


def settings_markdown() -> str:
    """The settings table of README.md, generated so the docs cannot drift from the code."""
    defaults = Settings()
    rows = ["| Environment | CLI flag / add-on option | Default | Meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        value = getattr(defaults, spec.field)
        if spec.field == "cache_dir":
            shown = "`~/.cache/hsi`"
        elif spec.field == "batch_max_size" and value is None:
            shown = "`auto`"
        elif value is None or value == ():
            shown = "—"
        elif isinstance(value, tuple):
            shown = f"`{','.join(value)}`"
        else:
            shown = f"`{str(value).lower() if isinstance(value, bool) else value}`"
        rows.append(f"| `{spec.env}` | `{spec.flag}` / `{spec.field}` | {shown} | {spec.help} |")
    return "\n".join(rows) + "\n"
