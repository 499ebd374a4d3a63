"""The embedded llama.cpp backend: the async face of `engine.LlamaEngine`.

Generation runs on a thread pool with one thread per context; the event loop only moves
tokens. A bounded number of requests may wait for a free context; past it, 503 at once.
A request whose caller goes away sets the engine's cancel flag and frees its context.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from dataclasses import dataclass
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import msgspec

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.backends.llamacpp.engine import (
    EngineOptions,
    GenerationParams,
    GenerationResult,
    LlamaEngine,
    grammar_for,
)
from seekgate.backends.llamacpp.prefixes import PrefixStore, fingerprint
from seekgate.backends.llamacpp.slots import SlotPool
from seekgate.core.types import ChatRequest, ChatResponse, Chunk, FinishReason, Request, Role, Usage
from seekgate.tools.emulate import grammar as tool_grammar
from seekgate.tools.emulate import parse_calls, prompt_messages, uses_tools
from seekgate.tools.stream import ToolCallStream
from seekgate.settings import LlamaCppBackendSpec, ModelSpec

__all__ = ["LlamaCppBackend"]

_DONE = object()
log = logging.getLogger("seekgate.llamacpp")


@dataclass(frozen=True)
class _Live:
    """A loaded model: its engine, the threads that run it, and its contexts. A hot swap
    replaces the whole record, so requests already running keep the one they started on."""

    engine: LlamaEngine
    pool: ThreadPoolExecutor
    slots: SlotPool
    weights: Path


class LlamaCppBackend:
    def __init__(
        self, name: str, alias: str, spec: LlamaCppBackendSpec, model: ModelSpec, weights: Path | None, prefix_root: Path | None = None
    ) -> None:
        self.name = name
        self._prefix_root = prefix_root
        self._alias = alias
        self._spec = spec
        self._model = model
        self._weights = weights
        self._live: _Live | None = None
        self._load_lock = asyncio.Lock()
        self._load_error: str | None = None
        self._finished = 0
        self._cancelled = 0
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def capabilities(self) -> Capabilities:
        info = self._live.engine.info if self._live else None
        return Capabilities(fim=bool(info and info.fim_tokens), json_schema=True, context_tokens=info.context_tokens if info else None)

    @property
    def engine(self) -> LlamaEngine | None:
        return self._live.engine if self._live else None

    @property
    def weights(self) -> Path | None:
        return self._live.weights if self._live else self._weights

    async def start(self) -> None:
        await self._ensure_loaded()

    async def health(self) -> Health:
        if self._live is not None:
            load = {
                "running": self._live.slots.running,
                "waiting": self._live.slots.waiting,
                "finished": self._finished,
                "cancelled": self._cancelled,
            }
            prefixes = self._live.engine.prefixes
            if prefixes is not None:
                load |= {f"prefix_{k}": v for k, v in prefixes.usage().items()}
            return Health(ready=True, load=load)
        if self._weights is None:
            return Health(ready=False, detail=f"weights not present; run `seekgate pull {self._alias}`")
        return Health(ready=False, detail=self._load_error or "not loaded yet")

    async def aclose(self) -> None:
        await asyncio.gather(*self._retiring)
        if self._live is not None:
            live, self._live = self._live, None
            await asyncio.to_thread(_retire, live)

    async def _load(self, weights: Path) -> _Live:
        s = self._spec
        options = EngineOptions(
            threads=s.threads,
            parallel=s.parallel,
            context_tokens=s.context_tokens,
            batch_tokens=s.batch_tokens,
            mmap=s.mmap,
            prefix_cache=s.prefix_cache,
            prefix_save_tokens=s.prefix_cache_min_tokens,
        )
        prefixes = None
        if s.prefix_cache and self._prefix_root is not None and (s.prefix_cache_memory_mb or s.prefix_cache_disk_mb):
            prefixes = await asyncio.to_thread(
                _open_prefixes, self._prefix_root, weights, s.prefix_cache_memory_mb << 20, s.prefix_cache_disk_mb << 20
            )
        engine = LlamaEngine(str(weights), options, chat_template=self._model.chat_template, prefixes=prefixes)
        try:
            await asyncio.to_thread(engine.load)
        except errors.SeekgateError:
            if prefixes is not None:
                prefixes.close()
            raise
        pool = ThreadPoolExecutor(max_workers=engine.slots, thread_name_prefix=f"llamacpp-{self._alias}")
        return _Live(engine, pool, SlotPool(engine.slots, s.queue, engine.cached_tokens, self._alias), weights)

    async def _ensure_loaded(self) -> _Live:
        if self._live is not None:
            return self._live
        if self._weights is None:
            raise errors.ModelNotReady(f"model {self._alias!r} has no weights on this machine; run `seekgate pull {self._alias}`")
        async with self._load_lock:
            if self._live is None:
                try:
                    self._live = await self._load(self._weights)
                except errors.SeekgateError as exc:
                    self._load_error = exc.message
                    raise
        return self._live

    async def swap(self, weights: Path) -> tuple[Path | None, Path]:
        """Hot-swap to other weights. The new model loads beside the old one, which keeps
        serving; then new requests go to the new model and running ones finish on the old,
        which is freed once they have. If the new model fails to load, nothing changes."""
        async with self._load_lock:
            try:
                live = await self._load(weights)
            except errors.SeekgateError as exc:
                raise errors.ModelNotReady(f"swap of {self._alias} to {weights} failed; the current model keeps serving: {exc.message}") from None
            old, self._live = self._live, live
            self._weights = weights
        if old is not None:
            task = asyncio.create_task(asyncio.to_thread(_retire, old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return (old.weights if old else None), weights

    async def count_tokens(self, request: Request) -> int:
        """Exact: the model's own template and tokenizer, tool descriptions included."""
        live = await self._ensure_loaded()
        prompt, _ = await asyncio.to_thread(_prepare, live.engine, request)
        return len(prompt)

    async def _submit(self, request: Request, emit: Callable[[str], None], cancel: threading.Event) -> Future[GenerationResult]:
        """Prepare the prompt off the loop, take a context, and start generating on it."""
        while True:
            live = await self._ensure_loaded()
            prompt, params = await asyncio.to_thread(_fit, live.engine, request, self._spec.context_overflow, self._spec.max_output_tokens)
            cap = self._spec.max_output_tokens
            if cap and (params.max_tokens is None or params.max_tokens > cap):
                params = dataclasses.replace(params, max_tokens=cap)
            slot = await live.slots.acquire(prompt, request.session if isinstance(request, ChatRequest) else None)
            if live is self._live:
                break
            live.slots.release(slot)  # the model was swapped while this request waited: use the new one
        # No await from here to submit: a swap cannot retire this model in between.
        loop = asyncio.get_running_loop()
        future = live.pool.submit(live.engine.generate, slot, prompt, params, emit, cancel)
        # The context is free only when its thread has really finished, not when the caller left.
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._release, live, slot, f))
        return future

    def _release(self, live: _Live, slot: int, future: Future[GenerationResult]) -> None:
        if future.cancelled() or (future.exception() is None and future.result().finish_reason is FinishReason.CANCELLED):
            self._cancelled += 1
        else:
            self._finished += 1
        live.slots.release(slot)

    async def chat(self, request: Request) -> ChatResponse:
        pieces: list[str] = []
        cancel = threading.Event()
        future = await self._submit(request, pieces.append, cancel)
        try:
            result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()
            raise
        text = "".join(pieces)
        calls = parse_calls(text) if uses_tools(request) else None
        if calls:
            return ChatResponse(model=request.model, text="", finish_reason=FinishReason.TOOL_CALLS, usage=_usage(result), tool_calls=calls)
        return ChatResponse(
            model=request.model, text=text, finish_reason=result.finish_reason, usage=_usage(result), stop_sequence=result.stop_sequence
        )

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        future = await self._submit(request, emit, cancel)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _DONE))
        calls = ToolCallStream() if uses_tools(request) else None
        try:
            while (item := await queue.get()) is not _DONE:
                if calls is None:
                    yield Chunk(text=item)  # type: ignore[arg-type]
                    continue
                text, deltas = calls.feed(item)  # type: ignore[arg-type]
                if text or deltas:
                    yield Chunk(text=text, tool_calls=tuple(deltas))
            result = future.result()
            finish = FinishReason.TOOL_CALLS if calls is not None and calls.mode == "calls" and result.finish_reason is FinishReason.STOP else result.finish_reason
            yield Chunk(finish_reason=finish, usage=_usage(result), stop_sequence=result.stop_sequence)
        finally:
            if not future.done():
                cancel.set()


def _open_prefixes(root: Path, weights: Path, memory_bytes: int, disk_bytes: int) -> PrefixStore | None:
    try:
        return PrefixStore(root, fingerprint(weights), memory_bytes=memory_bytes, disk_bytes=disk_bytes)
    except OSError as exc:  # an unwritable data_dir costs the saved prefixes, not the model
        log.warning("prefix caches are off for %s: %s", weights, exc)
        return None


def _retire(live: _Live) -> None:
    """Runs on a thread: wait for the model's running generations, then free it."""
    live.pool.shutdown(wait=True)
    live.engine.close()


def _prepare(engine: LlamaEngine, request: Request, output_cap: int = 0) -> tuple[list[int], GenerationParams]:
    """Runs on a worker thread: template, tokenize, and the grammar for a response format."""
    s = request.sampling
    grammar = None
    if isinstance(request, ChatRequest):
        if uses_tools(request):
            # No native tool use: the tools are described in the prompt and a grammar keeps every call valid.
            budget = min(filter(None, (s.max_tokens, output_cap)), default=None)
            grammar = tool_grammar(request, budget)
        elif request.response_format is not None:
            grammar = grammar_for(request.response_format.type, request.response_format.schema)
        prompt = engine.chat_prompt(prompt_messages(request))
    else:
        prompt = engine.completion_prompt(request.prompt, request.suffix)
    params = GenerationParams(
        max_tokens=s.max_tokens,
        temperature=1.0 if s.temperature is None else s.temperature,
        top_p=1.0 if s.top_p is None else s.top_p,
        top_k=s.top_k or 0,
        seed=s.seed,
        stop=s.stop,
        frequency_penalty=s.frequency_penalty or 0.0,
        presence_penalty=s.presence_penalty or 0.0,
        grammar=grammar,
    )
    return prompt, params


def _fit(engine: LlamaEngine, request: Request, overflow: str, output_cap: int = 0) -> tuple[list[int], GenerationParams]:
    """Runs on a worker thread: `_prepare`, and a prompt over the context window either refused
    before any compute (overflow "error") or trimmed by whole turns, oldest first ("trim")."""
    prompt, params = _prepare(engine, request, output_cap)
    assert engine.info is not None
    window = engine.info.context_tokens
    if overflow != "trim" or not isinstance(request, ChatRequest):
        if len(prompt) >= window:
            raise errors.InvalidRequest(
                f"the prompt is {len(prompt)} tokens; this model's context window is {window} tokens", code="context_length_exceeded"
            )
        return prompt, params
    room = min(params.max_tokens or 256, window // 4)  # keep space to answer in
    messages = list(request.messages)
    lead = next((i for i, m in enumerate(messages) if m.role is not Role.SYSTEM), len(messages))
    while len(prompt) + room > window:
        turns = messages[lead:]
        # A turn starts at a user message; tool results belong to the call before them.
        cut = next((i for i in range(1, len(turns)) if turns[i].role is Role.USER), None)
        if cut is None:
            raise errors.InvalidRequest(
                f"the prompt is {len(prompt)} tokens even with only its last turn; this model's context window is {window} tokens",
                code="context_length_exceeded",
            )
        messages = messages[:lead] + turns[cut:]
        prompt, params = _prepare(engine, msgspec.structs.replace(request, messages=tuple(messages)), output_cap)
    if len(messages) < len(request.messages):
        log.info("trimmed %d oldest messages to fit %d tokens into a %d-token window", len(request.messages) - len(messages), len(prompt), window)
    return prompt, params


def _usage(result: GenerationResult) -> Usage:
    return Usage(
        input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens, cached_input_tokens=result.cached_tokens
    )
