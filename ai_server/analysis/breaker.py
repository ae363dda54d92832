"""Stop calling an LLM that keeps running out of time, for a while.

On a small CPU a 4B-parameter LLM takes longer than HSI_LLM_TIMEOUT for every event (2 cores:
~150 s for one answer, docs/benchmarks.md "Event budget"). Each try still spends the timeout's
seconds of every core, which the detector and the next events need, and ends in the rules'
score anyway. After `TIMEOUTS_TO_PAUSE` timeouts in a row /analyze scores by the rules without
calling the LLM for HSI_LLM_PAUSE_S seconds, then tries again: one answer in time ends the
pause, another timeout starts the next one at once. Errors and unusable answers do not count:
they are not slowness, and the request says so itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

TIMEOUTS_TO_PAUSE = 2


class LlmBreaker:
    def __init__(
        self, pause_s: float, timeout_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pause_s = pause_s  # 0: never pause
        self.timeout_s = timeout_s
        self._clock = clock
        self._timeouts = 0  # in a row
        self._paused_until: float | None = None

    def skip_reason(self) -> str | None:
        """Why /analyze should not call the LLM now; None: call it."""
        if self._paused_until is None:
            return None
        left = self._paused_until - self._clock()
        if left <= 0:
            return None  # the pause is over: the next call tries again
        return (
            f"the LLM ran past HSI_LLM_TIMEOUT ({self.timeout_s:g} s) on the last "
            f"{self._timeouts} events; scored by the rules for {left:.0f} s more "
            f"(HSI_LLM_PAUSE_S {self.pause_s:g} s)"
        )

    def record(self, status: str) -> None:
        """What one LLM call ended in: `timeout`, `used`, or anything else (not counted)."""
        if status == "used" or status == "invalid_output":  # answered in time
            if self._paused_until is not None:
                _LOGGER.info("the LLM answered within its limit again: pause over")
            self._timeouts, self._paused_until = 0, None
        elif status == "timeout":
            self._timeouts += 1
            if self.pause_s > 0 and self._timeouts >= TIMEOUTS_TO_PAUSE:
                self._paused_until = self._clock() + self.pause_s
                _LOGGER.warning(
                    "the LLM ran past HSI_LLM_TIMEOUT (%g s) %d times in a row: events are "
                    "scored by the rules without it for %g s (HSI_LLM_PAUSE_S), then it is "
                    "tried again",
                    self.timeout_s,
                    self._timeouts,
                    self.pause_s,
                )
