"""Prometheus metrics, one registry per application (no process-global state)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LOGGER = logging.getLogger(__name__)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self, model_status: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hsi_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "hsi_request_latency_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_latency = Histogram(
            "hsi_inference_latency_seconds",
            "Model time per batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "hsi_batch_size",
            "Items per model batch",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "hsi_queue_depth", "Requests waiting for a batch", ["model"], registry=self.registry
        )
        self.rejected = Counter(
            "hsi_queue_rejected",
            "Requests refused because a queue was full",
            ["model"],
            registry=self.registry,
        )
        self.registry.register(_ResidencyCollector(model_status))
        self.registry.register(_NvmlCollector())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ResidencyCollector(Collector):
    def __init__(self, model_status: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._status = model_status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = GaugeMetricFamily(
            "hsi_model_loaded", "1 when the model is resident", labels=["model", "device"]
        )
        for name, entry in self._status().items():
            loaded.add_metric([name, str(entry.get("device", ""))], 1.0 if entry["loaded"] else 0)
        yield loaded


class _NvmlCollector(Collector):
    """GPU memory, utilisation and temperature on NVIDIA hosts (what nvidia-smi shows)."""

    def __init__(self) -> None:
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as err:  # no driver / not NVIDIA: GPU metrics are simply absent
            _LOGGER.debug("NVML unavailable: %s", err)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nvml = self._nvml
        if nvml is None:
            return
        used = GaugeMetricFamily("hsi_gpu_memory_used_bytes", "GPU memory used", labels=["gpu"])
        total = GaugeMetricFamily("hsi_gpu_memory_total_bytes", "GPU memory", labels=["gpu"])
        util = GaugeMetricFamily("hsi_gpu_utilization_percent", "GPU busy", labels=["gpu"])
        temp = GaugeMetricFamily("hsi_gpu_temperature_celsius", "GPU temp", labels=["gpu"])
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                gpu = str(index)
                used.add_metric([gpu], float(memory.used))
                total.add_metric([gpu], float(memory.total))
                util.add_metric([gpu], float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                temp.add_metric(
                    [gpu], float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
                )
        except Exception as err:
            _LOGGER.debug("NVML read failed: %s", err)
            return
        yield from (used, total, util, temp)
