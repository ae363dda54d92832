"""An LLM that keeps running out of time is paused (ai_server/analysis/breaker.py): rules only for
HSI_LLM_PAUSE_S after two timeouts in a row, then tried again."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from ai_server.analysis.breaker import TIMEOUTS_TO_PAUSE, LlmBreaker
from ai_server.keys import REGISTRY
from ai_server.models.llm import GenerationRequest

from .conftest import MakeClient, image_bytes
from .test_analyze import FAST, PERSON, _Broken, _form, _metadata


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_timeouts_in_a_row_pause_then_one_try_and_an_answer_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    breaker = LlmBreaker(600, 60, clock)
    assert TIMEOUTS_TO_PAUSE == 2
    breaker.record("timeout")
    assert breaker.skip_reason() is None  # one timeout is not a pattern
    with caplog.at_level(logging.WARNING):
        breaker.record("timeout")
    assert "2 times in a row" in caplog.text and "600 s" in caplog.text
    reason = breaker.skip_reason()
    assert reason is not None and "HSI_LLM_TIMEOUT (60 s)" in reason and "600 s more" in reason
    clock.now += 599
    assert breaker.skip_reason() is not None
    clock.now += 1
    assert breaker.skip_reason() is None  # the pause is over: one try
    breaker.record("timeout")
    assert breaker.skip_reason() is not None  # still too slow: paused again at once
    clock.now += 600
    breaker.record("used")
    breaker.record("timeout")
    assert breaker.skip_reason() is None  # an answer in time started the count again


@pytest.mark.parametrize("status", ["error", "off", "unavailable"])
def test_failures_other_than_slowness_do_not_count(status: str) -> None:
    breaker = LlmBreaker(600, 60, Clock())
    breaker.record("timeout")
    breaker.record(status)
    breaker.record("timeout")
    assert breaker.skip_reason() is not None  # the two timeouts still count as in a row
    other = LlmBreaker(600, 60, Clock())
    for _ in range(5):
        other.record(status)
    assert other.skip_reason() is None


def test_a_pause_of_zero_never_pauses() -> None:
    breaker = LlmBreaker(0, 60, Clock())
    for _ in range(5):
        breaker.record("timeout")
    assert breaker.skip_reason() is None


class _Hanging(_Broken):
    def __init__(self) -> None:
        super().__init__("hang")
        self.calls = 0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Any, None]:
        self.calls += 1
        async for delta in super().stream(request):
            yield delta


async def test_analyze_stops_calling_an_llm_that_keeps_timing_out(make_client: MakeClient) -> None:
    client = await make_client(preload=(), llm_timeout=0.2, llm_pause_s=3600)
    backend = _Hanging()
    slot = client.app[REGISTRY]._slots["llm"]  # the real registry, this backend as the LLM
    slot.spec = type(slot.spec)("llm", lambda: backend, priority=40)
    statuses = []
    for _ in range(4):
        metadata = _metadata(detections=[[PERSON]], options=FAST)
        answer = await client.post("/analyze", data=_form([image_bytes()], metadata))
        body = await answer.json()
        assert answer.status == 200, body
        assert body["risk"]["source"] == "rules" and body["risk"]["risk_score"] == 90
        statuses.append(body["models"]["llm"]["status"])
    assert statuses == ["timeout", "timeout", "skipped", "skipped"]
    assert backend.calls == 2
    assert "HSI_LLM_PAUSE_S" in body["models"]["llm"]["reason"]
