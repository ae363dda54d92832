"""LLM backends behind one interface: in-process llama.cpp, or a remote OpenAI-compatible server.

`LlamaCppLLM` runs a GGUF model (Nemotron Mini 4B Instruct Q4_K_M by default) in this process
through llama-cpp-python with the original server's settings: 4096 tokens of context, 99 GPU
layers, 2 parallel slots. A llama.cpp context is not re-entrant, so each slot is its own context
and is used by one worker thread at a time; requests beyond the slots wait in a bounded queue.
Each slot keeps the KV cache of its last prompt, so a prompt that starts with the same system
prompt only evaluates the part after the shared prefix (llama-cpp-python's prefix matching).

`RemoteLLM` sends the same requests to `HSI_LLM_URL` (llama.cpp server, vLLM, Ollama: anything
that speaks the OpenAI API) over aiohttp, for users who move the LLM to a bigger box.

Both yield `Delta`s (text pieces, then a final one with the finish reason and token counts), so
the risk stage, /completion and /v1/chat/completions drive either the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ..runtime.batcher import QueueFullError
from .base import ModelLoadError, hub_failure

_LOGGER = logging.getLogger(__name__)

# The original system's model: NVIDIA Nemotron Mini 4B Instruct, Q4_K_M (~2.5 GB).
DEFAULT_REPO = "bartowski/nemotron-mini-4b-instruct-GGUF"
DEFAULT_FILE = "nemotron-mini-4b-instruct-Q4_K_M.gguf"
DEFAULT_QUANT = "Q4_K_M"
# The prompt is evaluated this many tokens at a time, checking between steps whether anyone still
# waits: a prefill past its timeout stops within one step (~3 s on 2 cores for a 4B Q4_K_M)
# instead of holding the slot and every core for the rest of it. bench/prefill.py, 800-token
# prompt given up 5 s in: slot free after 1.4 s instead of 40 s, prefill as fast (1.00x).
PREFILL_STEP = 64


class LLMError(Exception):
    """Generation failed (backend error, unreachable server, malformed answer)."""


class LLMRequestError(LLMError):
    """The request cannot be served as asked (too long for the context, an unusable schema):
    the client's fault, answered 422; retrying the same request never helps."""


class LLMCancelledError(LLMError):
    """The caller went away or timed out; generation was stopped."""


class LLMTimeoutError(LLMError, TimeoutError):
    """The backend ran past its time limit. Also a TimeoutError, so a caller's own limit (the
    same figure, racing it) and the backend's give one label, `timeout`, whichever fires first;
    every other LLMError is labelled `error`."""


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a chat (`messages`) or a raw prompt (`prompt`, llama.cpp /completion)."""

    messages: Sequence[Mapping[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 0.95
    stop: Sequence[str] = ()
    json_schema: Mapping[str, Any] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a generation needs exactly one of messages or prompt")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens actually evaluated; the rest came from the prefix (KV) cache. None: unknown.
    prompt_tokens_evaluated: int | None = None


@dataclass(frozen=True)
class Delta:
    """A piece of generated text; the last one carries `finish_reason` and `usage`."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage
    model: str
    seconds: float = 0.0


class LLMBackend(ABC):
    """What the rest of the server needs from an LLM; also a registry `Model`."""

    name = "llm"
    context_size: int = 4096

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model name reported in answers (file name or remote model id)."""

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def warmup(self) -> None: ...

    @abstractmethod
    def unload(self) -> None: ...

    @abstractmethod
    def info(self) -> dict[str, Any]: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens `text` costs in a prompt (exact in-process, an upper estimate remotely)."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        """Generate, yielding text as it comes; closing the iterator stops generation."""

    async def generate(self, request: GenerationRequest) -> Completion:
        started = time.perf_counter()
        pieces: list[str] = []
        finish, usage = "stop", Usage()
        stream = self.stream(request)
        try:
            async for delta in stream:
                pieces.append(delta.text)
                if delta.finish_reason is not None:
                    finish = delta.finish_reason
                if delta.usage is not None:
                    usage = delta.usage
        finally:
            await stream.aclose()
        return Completion(
            "".join(pieces), finish, usage, self.model_id, time.perf_counter() - started
        )


# --- in-process llama.cpp ------------------------------------------------------------------


def resolve_gguf(source: str) -> str:
    """A local .gguf file (or a folder holding one), else a hub id: `org/repo[/file.gguf]`.

    Hub downloads go to the Hugging Face cache on users' machines; offline, the failure says so.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return str(path.resolve())
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        preferred = [f for f in files if DEFAULT_QUANT.lower() in f.name.lower()]
        if not files:
            raise ModelLoadError(f"LLM folder {path} holds no .gguf file")
        if len(files) > 1 and len(preferred) != 1:
            names = ", ".join(f.name for f in files)
            raise ModelLoadError(f"LLM folder {path} holds several .gguf files ({names}): name one")
        return str((preferred or files)[0].resolve())
    parts = source.split("/")
    if source.startswith((".", "/", "~")) or len(parts) not in (2, 3) or not all(parts):
        raise ModelLoadError(f"LLM model file does not exist: {source}")
    repo = "/".join(parts[:2])
    try:
        from huggingface_hub import hf_hub_download, list_repo_files

        if len(parts) == 3:
            filename = parts[2]
        elif repo == DEFAULT_REPO:
            filename = DEFAULT_FILE
        else:
            candidates = [
                f
                for f in list_repo_files(repo)
                if f.endswith(".gguf") and DEFAULT_QUANT.lower() in f.lower()
            ]
            if not candidates:
                raise ModelLoadError(f"{repo} has no {DEFAULT_QUANT} .gguf file: name one")
            filename = sorted(candidates)[0]
        return str(hf_hub_download(repo, filename))
    except ModelLoadError:
        raise
    except Exception as err:
        raise hub_failure(source, "LLM", err) from err


class _Stop(Exception):
    """Raised inside llama.cpp's sampling loop to stop a generation nobody waits for."""


@dataclass
class _Job:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[Delta | BaseException | None]
    cancel: threading.Event = field(default_factory=threading.Event)

    def put(self, item: Delta | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class LlamaCppLLM(LLMBackend):
    """A GGUF model in this process, `slots` contexts wide."""

    def __init__(
        self,
        source: str,
        *,
        context_size: int = 4096,
        gpu_layers: int = 99,
        slots: int = 2,
        threads: int | None = None,
        prefix_cache: bool = True,
        max_queue: int = 64,
        use_gpu: bool = True,
    ) -> None:
        self.source = source
        self.context_size = context_size
        self.gpu_layers = gpu_layers if use_gpu else 0
        self.slots = slots
        self.threads = threads
        self.prefix_cache = prefix_cache
        self.max_queue = max_queue
        self._path: str | None = None
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._contexts: list[Any] = []
        self._formatter: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self._last_seconds = 1.0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return Path(self._path or self.source).name

    @property
    def loaded(self) -> bool:
        return bool(self._contexts)

    def load(self) -> None:
        path = resolve_gguf(self.source)
        import llama_cpp

        contexts = []
        try:
            for _ in range(self.slots):
                contexts.append(
                    llama_cpp.Llama(
                        model_path=path,
                        n_ctx=self.context_size,
                        n_gpu_layers=self.gpu_layers,
                        n_threads=self.threads,
                        n_threads_batch=self.threads,
                        verbose=False,
                    )
                )
        except (ValueError, RuntimeError, OSError) as err:
            for context in contexts:
                context.close()
            raise ModelLoadError(f"could not load LLM from {path}: {err}") from err
        formatter = _chat_formatter(contexts[0])
        with self._lock:
            self._path = path
            self._formatter = formatter
            self._contexts = contexts
            self._free = queue.SimpleQueue()
            for context in contexts:
                self._free.put(context)
            self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="llm-slot")

    def warmup(self) -> None:
        # One short generation per process proves the file really generates (not just parses).
        with self._lock:
            context = self._contexts[0] if self._contexts else None
        if context is not None:
            context.create_completion("Hello", max_tokens=1)
            context.reset()

    def unload(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            contexts, self._contexts = self._contexts, []
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        for context in contexts:
            context.close()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "backend": "llama_cpp",
            "source": self.source,
            "device": "cuda" if self.gpu_layers and _gpu_offload() else "cpu",
            "context_size": self.context_size,
            "slots": self.slots,
            "gpu_layers": self.gpu_layers,
            "prefix_cache": self.prefix_cache,
        }
        if self._path is not None:
            info["file"] = self._path
        if self._contexts:
            info["queue_depth"] = max(0, self._pending - self.slots)
        return info

    def memory_bytes(self) -> int:
        """Weights (mapped once on CPU; offloaded once per slot on a GPU) plus each slot's KV
        cache, for the registry's memory budget."""
        with self._lock:
            contexts, path = list(self._contexts), self._path
        if not contexts or path is None:
            return 0
        weights = Path(path).stat().st_size
        copies = len(contexts) if self.gpu_layers and _gpu_offload() else 1
        return weights * copies + sum(kv_cache_bytes(c.metadata, c.n_ctx()) for c in contexts)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            context = self._contexts[0] if self._contexts else None
        if context is None:
            return _estimate_tokens(text)
        return len(context.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        executor = self._executor
        if executor is None:
            raise LLMError("LLM is not loaded")
        if self._pending >= self.slots + self.max_queue:
            ahead = (self._pending - self.slots + 1) / self.slots
            raise QueueFullError(self.name, max(1.0, ahead * self._last_seconds))
        job = _Job(request, asyncio.get_running_loop(), asyncio.Queue())
        self._pending += 1
        future = asyncio.get_running_loop().run_in_executor(executor, self._run, job)
        future.add_done_callback(lambda _: self._done())
        try:
            while True:
                item = await job.out.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancel.set()  # early exit (timeout, client gone): stop at the next token

    def _done(self) -> None:
        self._pending -= 1

    def _run(self, job: _Job) -> None:
        """Worker thread: take a free context, generate, hand the context back."""
        if job.cancel.is_set():
            job.put(None)
            return
        context = self._free.get()  # never blocks: one worker per context
        started = time.perf_counter()
        try:
            for delta in self._generate(context, job):
                job.put(delta)
            job.put(None)
        except _Stop:
            job.put(LLMCancelledError("generation stopped"))
        except LLMRequestError as err:
            job.put(err)
        except Exception as err:
            _LOGGER.exception("LLM generation failed")
            job.put(LLMError(f"LLM generation failed: {type(err).__name__}: {err}"))
        finally:
            self._free.put(context)
            self._last_seconds = time.perf_counter() - started

    def _generate(self, context: Any, job: _Job) -> Iterator[Delta]:
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        request = job.request
        if request.messages is not None:
            formatted = self._formatter(messages=[dict(m) for m in request.messages])
            prompt = context.tokenize(
                formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
            stop = [*(formatted.stop or []), *request.stop]
        else:
            prompt = context.tokenize((request.prompt or "").encode("utf-8"), special=True)
            stop = list(request.stop)
        if len(prompt) + request.max_tokens > self.context_size:
            raise LLMRequestError(
                f"prompt of {len(prompt)} tokens + {request.max_tokens} to generate exceeds the "
                f"context of {self.context_size} tokens"
            )
        grammar = None
        if request.json_schema is not None:
            try:
                grammar = LlamaGrammar.from_json_schema(
                    json.dumps(request.json_schema), verbose=False
                )
            except Exception as err:
                raise LLMRequestError(
                    f"the JSON schema cannot be turned into a grammar: {type(err).__name__}: {err}"
                ) from None
        if not self.prefix_cache:
            context.reset()  # forget the cached prompt: every token is evaluated again
        # llama.cpp adds queued work to its counters when it next synchronises: a generation
        # stopped mid-prompt would otherwise be counted in this one's prompt_tokens_evaluated.
        llama_cpp.llama_synchronize(context.ctx)
        llama_cpp.llama_perf_context_reset(context.ctx)
        context.eval = _interruptible_eval(context, job.cancel)  # llama-cpp calls self.eval
        try:
            yield from self._stream(context, job, prompt, stop, grammar)
        finally:
            del context.eval  # back to llama-cpp's own

    def _stream(
        self, context: Any, job: _Job, prompt: list[int], stop: list[str], grammar: Any
    ) -> Iterator[Delta]:
        import llama_cpp

        request = job.request
        chunks = context.create_completion(
            prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=stop,
            seed=request.seed,
            grammar=grammar,
            # Checked after every token, also while llama-cpp holds back an incomplete
            # character: a caller that went away stops the generation at once.
            stopping_criteria=llama_cpp.StoppingCriteriaList([lambda *_: job.cancel.is_set()]),
            stream=True,
        )
        finish: str | None = None
        pieces: list[str] = []
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                if choice["text"]:
                    pieces.append(choice["text"])
                    yield Delta(choice["text"])
        finally:
            chunks.close()
        if job.cancel.is_set():
            raise _Stop
        # llama.cpp counts what it really evaluated: the prompt minus the cached prefix (a fully
        # cached prompt still replays its last token).
        evaluated = int(llama_cpp.llama_perf_context(context.ctx).n_p_eval)
        text = "".join(pieces)
        # The stream does not say how many tokens it generated: re-tokenising the text estimates
        # it, and can come out a token or two above the truth (24 generated, 25 re-tokenised).
        # Generation stops at max_tokens, so the count never exceeds it.
        generated = len(context.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0
        usage = Usage(
            prompt_tokens=len(prompt),
            completion_tokens=min(generated, request.max_tokens),
            prompt_tokens_evaluated=min(len(prompt), max(1, evaluated)),
        )
        yield Delta("", finish or "stop", usage)


def _interruptible_eval(context: Any, cancel: threading.Event) -> Callable[[Sequence[int]], None]:
    """`context.eval` (llama-cpp's prompt and per-token evaluation) in PREFILL_STEP steps, raising
    _Stop before a step once `cancel` is set. Evaluating in steps is what llama-cpp does itself
    (in batches of n_batch): each call continues where the last one ended."""
    evaluate = type(context).eval

    def eval_in_steps(tokens: Sequence[int]) -> None:
        for start in range(0, len(tokens), PREFILL_STEP):
            if cancel.is_set():
                raise _Stop
            evaluate(context, tokens[start : start + PREFILL_STEP])

    return eval_in_steps


# Used when a GGUF file carries no chat template (ChatML, which most instruct models accept).
_FALLBACK_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _chat_formatter(context: Any) -> Any:
    """The model's own chat template (from the GGUF metadata), rendered like llama.cpp does."""
    from llama_cpp import llama_chat_format

    def token_text(token: int) -> str:
        return bytes(context.detokenize([token], special=True)).decode("utf-8", "replace")

    eos, bos = context.token_eos(), context.token_bos()
    template = context.metadata.get("tokenizer.chat_template") or _FALLBACK_TEMPLATE
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(eos) if eos >= 0 else "",
        bos_token=token_text(bos) if bos >= 0 else "",
        stop_token_ids=[eos] if eos >= 0 else None,
    )


def kv_cache_bytes(metadata: dict[str, str], n_ctx: int) -> int:
    """f16 keys and values for every layer and position, from the GGUF's own header."""
    arch = metadata.get("general.architecture", "llama")

    def number(key: str, default: int = 0) -> int:
        try:
            return int(metadata.get(f"{arch}.{key}", default))
        except ValueError:
            return default

    layers, width = number("block_count"), number("embedding_length")
    heads = number("attention.head_count", 1) or 1
    kv_heads = number("attention.head_count_kv", heads) or heads
    return 2 * 2 * n_ctx * layers * width * kv_heads // heads


def _gpu_offload() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:
        return False


def _estimate_tokens(text: str) -> int:
    """A safe upper estimate where no tokenizer is at hand (~3 characters per token)."""
    return len(text) // 3 + 1


# --- remote OpenAI-compatible server ---------------------------------------------------------


class RemoteLLM(LLMBackend):
    """An OpenAI-compatible server (`/v1/chat/completions`, `/v1/completions`) over aiohttp."""

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        context_size: int = 4096,
        timeout: float = 60.0,
    ) -> None:
        base = url.rstrip("/")
        self.base_url = base.removesuffix("/v1")
        self.model = model
        self._api_key = api_key
        self.context_size = context_size
        self.timeout = timeout
        self._models: list[str] = []
        self._loaded = False

    @property
    def model_id(self) -> str:
        return self.model or (self._models[0] if self._models else "default")

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def load(self) -> None:
        """Check that the server answers (runs in the registry's load thread)."""
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in config
            f"{self.base_url}/v1/models", headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, 10)) as answer:  # noqa: S310
                body = json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise ModelLoadError(
                f"LLM server {self.base_url} answered {err.code} to GET /v1/models"
            ) from err
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"LLM server {self.base_url} is unreachable: {err}") from err
        data = body.get("data") if isinstance(body, dict) else None
        self._models = [
            str(item["id"]) for item in data or [] if isinstance(item, dict) and "id" in item
        ]
        if self.model and self._models and self.model not in self._models:
            _LOGGER.warning(
                "HSI_LLM_MODEL=%s is not among the server's models (%s); sending it anyway",
                self.model,
                ", ".join(self._models),
            )
        self._loaded = True

    def warmup(self) -> None:
        """Nothing to warm: the remote server keeps its own model resident."""

    def unload(self) -> None:
        self._loaded = False

    def info(self) -> dict[str, Any]:
        return {
            "backend": "remote",
            "source": self.base_url,
            "device": "remote",
            "model": self.model_id,
            "context_size": self.context_size,
        }

    def count_tokens(self, text: str) -> int:
        return _estimate_tokens(text)

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": request.json_schema, "strict": True},
            }
        if request.messages is not None:
            body["messages"] = [dict(m) for m in request.messages]
            return "/v1/chat/completions", body
        body["prompt"] = request.prompt
        return "/v1/completions", body

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        path, body = self._body(request)
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 10))
        finish: str | None = None
        usage: Usage | None = None
        try:
            # One session per call: an LLM call takes seconds, a connection milliseconds, and
            # nothing outlives the event loop that made it.
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    f"{self.base_url}{path}", json=body, headers=self._headers()
                ) as answer,
            ):
                if answer.status >= 400:
                    detail = (await answer.text())[:300]
                    raise LLMError(f"LLM server answered {answer.status} to {path}: {detail}")
                async for data in _sse_events(answer):
                    if data == "[DONE]":
                        break
                    chunk = _json_object(data)
                    if "error" in chunk:
                        raise LLMError(f"LLM server error: {chunk['error']}")
                    if isinstance(chunk.get("usage"), dict):
                        usage = _usage(chunk["usage"])
                    for choice in chunk.get("choices") or []:
                        text = _choice_text(choice)
                        finish = choice.get("finish_reason") or finish
                        if text:
                            yield Delta(text)
        except TimeoutError as err:  # first: aiohttp's timeouts are ClientErrors too
            raise LLMTimeoutError(
                f"LLM server {self.base_url} timed out after {self.timeout:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise LLMError(f"LLM server {self.base_url} failed: {type(err).__name__}: {err}") from (
                err
            )
        yield Delta("", finish or "stop", usage or Usage())


async def _sse_events(answer: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """`data:` payloads of a server-sent-event stream; a plain JSON body counts as one."""
    if not answer.content_type.startswith("text/event-stream"):
        yield await answer.text()
        yield "[DONE]"
        return
    data: list[str] = []
    async for raw in answer.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        yield "\n".join(data)


def _json_object(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as err:
        raise LLMError(f"LLM server sent malformed JSON: {data[:200]!r}") from err
    if not isinstance(chunk, dict):
        raise LLMError(f"LLM server sent {type(chunk).__name__}, not an object")
    return chunk


def _choice_text(choice: dict[str, Any]) -> str:
    if "delta" in choice:  # chat stream
        return str((choice.get("delta") or {}).get("content") or "")
    if "message" in choice:  # non-streamed chat answer
        return str((choice.get("message") or {}).get("content") or "")
    return str(choice.get("text") or "")


def _usage(data: dict[str, Any]) -> Usage:
    prompt = int(data.get("prompt_tokens") or 0)
    details = data.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=int(data.get("completion_tokens") or 0),
        prompt_tokens_evaluated=prompt - int(cached) if cached is not None else None,
    )
