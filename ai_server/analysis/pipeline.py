"""The /analyze pipeline: one security event in, objects + description + risk out.

Stages, each timed (`timings_ms`) and reported (`models`):
  detect    the detector, through the shared batcher, when the client sent no detections
  enrich    per-object attributes and image quality from the enrichment model (optional)
  describe  a Florence-2 caption of the key frame (optional)
  risk      the LLM with a schema-constrained answer (optional), else the rule-based scorer

Optional stages run only when the request leaves them on (`metadata.options`) and the model is
part of this server; a stage whose model is missing or fails is skipped and reported, and the
event is still scored. The LLM stage falls back to the rules on any failure, including its
time limit, so /analyze always answers with a risk assessment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Final

from hsi_client import (
    AnalysisResult,
    AnalyzedObject,
    EventMetadata,
    RiskAssessment,
    key_frame,
    rules,
)
from PIL import Image

from ..models.detector import Detection, Detector
from ..models.llm import GenerationRequest, LLMBackend, LLMError
from ..models.vlm import Florence
from ..runtime.batcher import QueueFullError
from ..runtime.registry import ModelRegistry, ModelUnavailableError
from . import risk
from .breaker import LlmBreaker
from .prompts import EventFacts, build_prompt

_LOGGER = logging.getLogger(__name__)

DetectFn = Callable[[Image.Image], Awaitable[list[Detection]]]
# Low temperature: risk scores should not wander between two runs of one event.
RISK_TEMPERATURE = 0.1


# The event's frames, each with its objects -> per frame: attributes per object (same order) and
# the frame's quality (`{blur, brightness, dark, blurry, scene_change?}`): the /enrich contract,
# from issue 3's zoo, for a whole event (some work, such as plate reads, is chosen event-wide).
EnrichFn = Callable[
    [Sequence[Image.Image], Sequence[Sequence[AnalyzedObject]]],
    Awaitable[list[tuple[list[dict[str, Any]], dict[str, Any]]]],
]
DescribeFn = Callable[[Image.Image], Awaitable[str]]


class Pipeline:
    """Runs the stages for one event; shared by every request of one app (its only state is the
    LLM breaker: whether the LLM has been running out of time)."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        detect: DetectFn,
        enrich: EnrichFn,
        describe: DescribeFn,
        llm_timeout: float,
        breaker: LlmBreaker | None = None,
    ) -> None:
        """Every stage's callable, given once: the pipeline is complete when it is made."""
        self.registry: Final = registry
        self.detect: Final = detect
        self.enrich: Final = enrich
        self.describe: Final = describe
        self.llm_timeout: Final = llm_timeout
        self.breaker: Final = breaker or LlmBreaker(0, llm_timeout)

    async def analyze(
        self, images: Sequence[Image.Image], metadata: EventMetadata
    ) -> AnalysisResult:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        models: dict[str, dict[str, Any]] = {}

        stage = time.perf_counter()
        if metadata.detections is None:
            objects = await self._detect(images)
            models[Detector.name] = {"status": "used"}
            timings["detect"] = _ms(stage)
        else:
            objects = [obj for frame in metadata.detections for obj in frame]
            models[Detector.name] = {"status": "skipped", "reason": "detections sent by the client"}

        quality: list[dict[str, Any]] = []
        if metadata.options.enrich:
            stage = time.perf_counter()
            objects, quality, models["enrich"] = await self._enrich(images, objects)
            timings["enrich"] = _ms(stage)
        else:
            models["enrich"] = {"status": "off"}

        description: str | None = None
        captions: dict[int, str] = {}
        if metadata.options.describe:
            stage = time.perf_counter()
            key = key_frame(objects, len(images))
            description, models[Florence.name] = await self._describe(images[key])
            if description:
                captions[key] = description
            timings["describe"] = _ms(stage)
        else:
            models[Florence.name] = {"status": "off"}

        stage = time.perf_counter()
        facts = EventFacts(metadata, objects, len(images), captions, quality)
        assessment, models[LLMBackend.name] = await self._risk(facts)
        timings["risk"] = _ms(stage)
        timings["total"] = _ms(started)
        return AnalysisResult(objects, description, assessment, timings, models)

    # --- stages ------------------------------------------------------------------------------

    async def _detect(self, images: Sequence[Image.Image]) -> list[AnalyzedObject]:
        found = await asyncio.gather(*(self.detect(image) for image in images))
        return [
            AnalyzedObject(d.label, d.confidence, index, d.box)
            for index, detections in enumerate(found)
            for d in detections
        ]

    async def _enrich(
        self, images: Sequence[Image.Image], objects: list[AnalyzedObject]
    ) -> tuple[list[AnalyzedObject], list[dict[str, Any]], dict[str, Any]]:
        by_frame = [[obj for obj in objects if obj.frame == i] for i in range(len(images))]
        try:
            answers = await self.enrich(images, by_frame)
        except (ModelUnavailableError, QueueFullError) as err:
            return objects, [], {"status": "unavailable", "reason": str(err)}
        except Exception as err:
            _LOGGER.warning("enrichment failed, continuing without: %s", err)
            return objects, [], {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        enriched = [
            replace(obj, attributes={**obj.attributes, **attributes})
            for mine, (found, _) in zip(by_frame, answers, strict=True)
            for obj, attributes in zip(mine, found, strict=True)
        ]
        return enriched, [dict(quality) for _, quality in answers], {"status": "used"}

    async def _describe(self, image: Image.Image) -> tuple[str | None, dict[str, Any]]:
        try:
            text = await self.describe(image)
        except (ModelUnavailableError, QueueFullError) as err:
            return None, {"status": "unavailable", "reason": str(err)}
        except Exception as err:
            _LOGGER.warning("caption failed, continuing without: %s", err)
            return None, {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        return text or None, {"status": "used"}

    async def _risk(self, facts: EventFacts) -> tuple[RiskAssessment, dict[str, Any]]:
        quality = rules.quality_of(facts.image_quality)

        def fallback(status: str, reason: str) -> tuple[RiskAssessment, dict[str, Any]]:
            return rules.score(facts.objects, facts.metadata, quality), {
                "status": status,
                "reason": reason,
            }

        if not facts.metadata.options.llm:
            return fallback("off", "turned off by the request")
        if LLMBackend.name not in self.registry.names:
            return fallback("unavailable", "no LLM configured")
        if (reason := self.breaker.skip_reason()) is not None:
            return fallback("skipped", reason)
        try:
            llm = self.registry.use(LLMBackend.name, LLMBackend)  # type: ignore[type-abstract]
            async with llm as backend:
                answer = await self._llm(facts, backend, fallback)
        except ModelUnavailableError as err:
            return fallback("unavailable", str(err))
        self.breaker.record(answer[1]["status"])
        return answer

    async def _llm(
        self,
        facts: EventFacts,
        backend: LLMBackend,
        fallback: Callable[[str, str], tuple[RiskAssessment, dict[str, Any]]],
    ) -> tuple[RiskAssessment, dict[str, Any]]:
        prompt = build_prompt(
            facts,
            count_tokens=backend.count_tokens,
            context_size=backend.context_size,
            answer_tokens=risk.RISK_MAX_TOKENS,
        )
        request = GenerationRequest(
            messages=prompt.messages,
            max_tokens=risk.RISK_MAX_TOKENS,
            temperature=RISK_TEMPERATURE,
            json_schema=risk.RISK_SCHEMA,
        )
        try:
            async with asyncio.timeout(self.llm_timeout):
                completion = await backend.generate(request)
        except TimeoutError:
            return fallback("timeout", f"the LLM took longer than {self.llm_timeout:g} s")
        except (LLMError, QueueFullError) as err:
            return fallback("error", str(err))
        report: dict[str, Any] = {
            "model": completion.model,
            "prompt_tokens": completion.usage.prompt_tokens,
            "prompt_tokens_evaluated": completion.usage.prompt_tokens_evaluated,
            "completion_tokens": completion.usage.completion_tokens,
            "prompt_tiers": prompt.tiers,
        }
        try:
            assessment = risk.parse_llm_output(
                completion.text, entities=rules.entities(facts.objects)
            )
        except risk.RiskParseError as err:
            _LOGGER.warning("LLM answer unusable (%s); scoring by rules", err)
            result, status = fallback("invalid_output", f"LLM answer unusable: {err}")
            return result, {**report, **status}
        by_rules = rules.score(facts.objects, facts.metadata, rules.quality_of(facts.image_quality))
        bounded = risk.bound_by_rules(assessment, by_rules)
        if bounded is not assessment:
            _LOGGER.warning(
                "LLM score %d is more than %d below the rules' %d (injected text?); raised to %d",
                assessment.risk_score,
                risk.LLM_BELOW_RULES_MAX,
                by_rules.risk_score,
                bounded.risk_score,
            )
            report["bounded"] = {
                "llm_score": assessment.risk_score,
                "rules_score": by_rules.risk_score,
                "max_below_rules": risk.LLM_BELOW_RULES_MAX,
            }
        return bounded, {"status": "used", **report}


def _ms(since: float) -> float:
    return round(1000 * (time.perf_counter() - since), 2)
