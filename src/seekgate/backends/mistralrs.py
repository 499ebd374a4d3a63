"""The optional in-process mistral.rs backend (`pip install seekgate[mistralrs]`), for GGUF weights.

Measured with mistralrs 0.9.5 on CPU, and the reasons for the shape of this module:

- it cannot batch: two sequences in flight fail ("input tensor is not contiguous"), and two
  threads calling the runner at once fail ("Already borrowed"). So requests run one at a time
  on one worker thread, behind a lock with a bounded queue; past the queue, 503 at once.
- it has no per-request seed, and cannot seed its CPU generator at all ("cannot seed the CPU rng
  with set_seed"): a seed is honoured only where it changes nothing, with greedy decoding.
- its completion call does not stream, so a completion arrives as one chunk and cannot be
  stopped part-way; chat streams token by token and stops when the caller leaves.
- it works offline from the GGUF alone (tokenizer and chat template come from the file) when
  given a local directory, no tokenizer model id and no hub token.
- some architectures load and then fail at the first forward pass; `KNOWN_FAILURES` lists them,
  and they are refused before loading, from the GGUF header alone.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import struct
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    CompletionRequest,
    FinishReason,
    ImagePart,
    Message,
    Request,
    Usage,
)
from seekgate.settings import MistralrsBackendSpec, ModelSpec

__all__ = ["KNOWN_FAILURES", "KnownFailure", "MistralrsBackend", "gguf_architecture"]


@dataclass(frozen=True)
class KnownFailure:
    architecture: str
    """The GGUF `general.architecture` value."""
    measured: str
    """The mistralrs version the failure was measured with."""
    failure: str


KNOWN_FAILURES: dict[str, KnownFailure] = {
    f.architecture: f
    for f in (
        KnownFailure(
            architecture="deepseek2",
            measured="0.9.5",
            failure=(
                "DeepSeek-V2 models such as DeepSeek-Coder-V2-Lite load, then fail with a tensor shape "
                "mismatch at the first forward pass of their MLA attention (measured on CPU, with both "
                "safetensors and GGUF weights)"
            ),
        ),
    )
}

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH, "tool_calls": FinishReason.TOOL_CALLS}
_DONE = object()


@dataclass
class _Outcome:
    finish_reason: FinishReason
    usage: Usage


class MistralrsBackend:
    def __init__(self, name: str, alias: str, spec: MistralrsBackendSpec, model: ModelSpec, weights: Path | None) -> None:
        self.name = name
        self._alias = alias
        self._spec = spec
        self._model = model
        self._weights = weights
        self._runner: Any = None
        self._context_tokens: int | None = None
        self._load_lock = asyncio.Lock()
        self._load_error: errors.SeekgateError | None = None
        self._turn = asyncio.Lock()
        self._waiting = 0
        self._finished = 0
        self._cancelled = 0
        self._running: set[threading.Event] = set()
        # One thread: the runner is always called from it, and a request's thread is done
        # before the next one starts.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mistralrs-{alias}")
        self._template_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(context_tokens=self._context_tokens)

    async def start(self) -> None:
        await self._ensure_loaded()

    async def health(self) -> Health:
        if self._runner is not None:
            load = {
                "running": int(self._turn.locked()),
                "waiting": self._waiting,
                "finished": self._finished,
                "cancelled": self._cancelled,
            }
            return Health(ready=True, load=load)
        if self._weights is None:
            return Health(ready=False, detail=f"weights not present; run `seekgate pull {self._alias}`")
        return Health(ready=False, detail=self._load_error.message if self._load_error else "not loaded yet")

    async def aclose(self) -> None:
        for cancel in self._running:
            cancel.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        self._runner = None
        if self._template_dir is not None:
            self._template_dir.cleanup()
            self._template_dir = None

    # -- loading -----------------------------------------------------------------------------

    async def _ensure_loaded(self) -> Any:
        if self._runner is not None:
            return self._runner
        if self._weights is None:
            raise errors.ModelNotReady(
                f"model {self._alias!r} has no weights on this machine; run `seekgate pull {self._alias}`"
            )
        if self._load_error is not None:
            raise self._load_error
        async with self._load_lock:
            if self._runner is None:
                loop = asyncio.get_running_loop()
                try:
                    runner = await loop.run_in_executor(self._pool, self._load, self._weights)
                except errors.SeekgateError as exc:
                    self._load_error = exc
                    raise
                self._context_tokens = runner.max_sequence_length()
                self._runner = runner
        return self._runner

    def _load(self, weights: Path) -> Any:
        """Runs on the worker thread: refuse known failures, then load the GGUF."""
        architecture = gguf_architecture(weights)
        known = KNOWN_FAILURES.get(architecture)
        if known is not None:
            raise errors.ModelNotReady(
                f"model {self._alias!r} ({weights.name}) has architecture {architecture!r}, which the "
                f"mistralrs engine cannot run: with mistralrs {known.measured} (installed: {_installed_version()}), "
                f"{known.failure}. Serve it "
                'with the embedded llama.cpp engine (a backend with type = "llamacpp"), or run '
                'mistralrs-server yourself and reach it through a backend with type = "openai".',
                code="unsupported_architecture",
            )
        mistralrs = _import_mistralrs()
        template = None
        if self._model.chat_template:
            # The runner takes an override template only as a file whose name ends in .jinja.
            self._template_dir = tempfile.TemporaryDirectory(prefix="seekgate-mistralrs-")
            template = Path(self._template_dir.name) / "chat_template.jinja"
            template.write_text(self._model.chat_template)
        try:
            return mistralrs.Runner(
                # A local directory, no tokenizer model id and no token: the tokenizer and chat
                # template come from the GGUF and nothing asks the Hugging Face hub.
                which=mistralrs.Which.GGUF(quantized_model_id=str(weights.parent), quantized_filename=weights.name, tok_model_id=None),
                max_seqs=1,
                token_source="none",
                jinja_explicit=str(template) if template else None,
            )
        except BaseException as exc:
            if _engine_error(exc):
                raise errors.ModelNotReady(f"mistralrs could not load {weights}: {exc}") from None
            raise

    # -- requests ----------------------------------------------------------------------------

    async def _acquire(self) -> None:
        if self._turn.locked() and self._waiting >= self._spec.queue:
            raise errors.Overloaded(
                f"model {self._alias!r} is busy: mistralrs runs one request at a time and "
                f"{self._waiting} are waiting; retry shortly",
                headers={"Retry-After": "1"},
            )
        self._waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self._waiting -= 1

    def _submit(self, runner: Any, request: Request, emit: Callable[[str], None], cancel: threading.Event) -> Future[_Outcome]:
        loop = asyncio.get_running_loop()
        self._running.add(cancel)
        try:
            future = self._pool.submit(_generate, runner, request, emit, cancel)
        except RuntimeError:  # the pool was shut down by aclose
            self._running.discard(cancel)
            self._turn.release()
            raise errors.ModelNotReady(f"model {self._alias!r} is shutting down") from None
        # The turn passes on only when the thread has really finished, not when the caller left.
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._release, cancel, f))
        return future

    def _release(self, cancel: threading.Event, future: Future[_Outcome]) -> None:
        self._running.discard(cancel)
        if future.cancelled() or (future.exception() is None and future.result().finish_reason is FinishReason.CANCELLED):
            self._cancelled += 1
        else:
            self._finished += 1
        self._turn.release()

    async def chat(self, request: Request) -> ChatResponse:
        _check(request)
        runner = await self._ensure_loaded()
        await self._acquire()
        pieces: list[str] = []
        cancel = threading.Event()
        future = self._submit(runner, request, pieces.append, cancel)
        try:
            outcome = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()
            raise
        return ChatResponse(model=request.model, text="".join(pieces), finish_reason=outcome.finish_reason, usage=outcome.usage)

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        _check(request)
        runner = await self._ensure_loaded()
        await self._acquire()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        future = self._submit(runner, request, emit, cancel)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _DONE))
        try:
            while (item := await queue.get()) is not _DONE:
                yield Chunk(text=item)  # type: ignore[arg-type]
            outcome = future.result()
            yield Chunk(finish_reason=outcome.finish_reason, usage=outcome.usage)
        finally:
            if not future.done():
                cancel.set()


# -- the worker thread ---------------------------------------------------------------------


def _generate(runner: Any, request: Request, emit: Callable[[str], None], cancel: threading.Event) -> _Outcome:
    """Runs on the worker thread; chat streams so that a caller who leaves stops generation."""
    if cancel.is_set():  # the caller left while waiting for its turn
        return _Outcome(FinishReason.CANCELLED, Usage())
    mistralrs = _import_mistralrs()
    try:
        if isinstance(request, CompletionRequest):
            response = runner.send_completion_request(mistralrs.CompletionRequest(prompt=request.prompt, model="default", **_sampling(request)))
            choice = response.choices[0]
            if choice.text:
                emit(choice.text)
            return _Outcome(_FINISH.get(choice.finish_reason, FinishReason.STOP), _usage(response.usage))
        messages = [_message(m) for m in request.messages]
        chunks = runner.send_chat_completion_request(
            mistralrs.ChatCompletionRequest(messages=messages, model="default", stream=True, **_sampling(request))
        )
        outcome = _Outcome(FinishReason.STOP, Usage())
        # Leaving this loop drops the stream, and mistralrs then stops the sequence.
        for chunk in chunks:
            if cancel.is_set():
                return _Outcome(FinishReason.CANCELLED, outcome.usage)
            if chunk.usage is not None:
                outcome.usage = _usage(chunk.usage)
            if chunk.choices:
                choice = chunk.choices[0]
                if choice.delta.content:
                    emit(choice.delta.content)
                if choice.finish_reason:
                    outcome.finish_reason = _FINISH.get(choice.finish_reason, FinishReason.STOP)
        return outcome
    except BaseException as exc:
        if _engine_error(exc):
            raise errors.SeekgateError(f"mistralrs failed: {exc}") from None
        raise


def _check(request: Request) -> None:
    """Refuse, before queueing, what this engine would otherwise silently get wrong."""
    if isinstance(request, CompletionRequest):
        if request.suffix is not None:
            raise errors.Unsupported(
                "the mistralrs backend has no fill-in-the-middle; `suffix` needs the llamacpp backend and a FIM model", param="suffix"
            )
    else:
        if any(isinstance(p, ImagePart) for m in request.messages for p in m.content):
            raise errors.Unsupported("this model cannot see images; send text only or route to a vision model", param="messages")
        if request.response_format is not None and request.response_format.type != "text":
            raise errors.Unsupported("the mistralrs backend does not enforce response formats; use the llamacpp backend", param="response_format")
        if request.tools:
            raise errors.Unsupported("the mistralrs backend has no tool calling", param="tools")
    s = request.sampling
    if s.seed is not None and s.temperature != 0:
        raise errors.Unsupported(
            "the mistralrs backend cannot seed sampling on CPU; drop `seed`, or set temperature 0 for repeatable output", param="seed"
        )


def _sampling(request: Request) -> dict[str, Any]:
    s = request.sampling
    return {
        "max_tokens": s.max_tokens,
        "temperature": 1.0 if s.temperature is None else s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k or None,
        "stop_seqs": list(s.stop) or None,
        "frequency_penalty": s.frequency_penalty,
        "presence_penalty": s.presence_penalty,
    }


def _message(message: Message) -> dict[str, str]:
    content = message.text
    if message.tool_calls:
        # Chat templates of models without tool use have no slot for calls; keep them as JSON text.
        calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
        content = (content + "\n" if content else "") + msgspec.json.encode(calls).decode()
    return {"role": message.role.value, "content": content}


def _usage(usage: Any) -> Usage:
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


def _engine_error(exc: BaseException) -> bool:
    # mistralrs raises ValueError/RuntimeError, and a Rust panic surfaces as
    # pyo3_runtime.PanicException, a BaseException that cannot be imported to name it.
    return isinstance(exc, ValueError | RuntimeError) or type(exc).__name__ == "PanicException"


def _import_mistralrs() -> Any:
    # mistral.rs reads RUST_LOG once, when imported; without it, it logs every load step to stderr.
    os.environ.setdefault("RUST_LOG", "warn")
    try:
        import mistralrs
    except ImportError:
        raise errors.ModelNotReady("the mistralrs engine is not installed; `pip install seekgate[mistralrs]`") from None
    return mistralrs


def _installed_version() -> str:
    try:
        return importlib.metadata.version("mistralrs")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# -- GGUF header ---------------------------------------------------------------------------

_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""Byte size of each fixed-size GGUF value type (u8 i8 u16 i16 u32 i32 f32 bool u64 i64 f64)."""


def gguf_architecture(path: Path) -> str:
    """`general.architecture` from a GGUF header, read without loading any weights."""
    try:
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise errors.ModelNotReady(f"{path} is not a GGUF file")
            (version,) = struct.unpack("<I", f.read(4))
            if version < 2:
                raise errors.ModelNotReady(f"{path} is a GGUF version {version} file, too old for mistralrs; convert it again")
            _, n_kv = struct.unpack("<QQ", f.read(16))
            for _ in range(n_kv):
                key = _read_string(f)
                (kind,) = struct.unpack("<I", f.read(4))
                if key == "general.architecture" and kind == _GGUF_STRING:
                    return _read_string(f)
                _skip_value(f, kind)
    except (OSError, struct.error, UnicodeDecodeError, KeyError) as exc:
        raise errors.ModelNotReady(f"cannot read the GGUF header of {path}: {exc!r}") from None
    raise errors.ModelNotReady(f"{path} has no general.architecture in its GGUF header")


def _read_string(f: IO[bytes]) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode()


def _skip_value(f: IO[bytes], kind: int) -> None:
    if kind == _GGUF_STRING:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, os.SEEK_CUR)
    elif kind == _GGUF_ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _GGUF_SIZES:
            f.seek(_GGUF_SIZES[item] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, item)
    else:
        f.seek(_GGUF_SIZES[kind], os.SEEK_CUR)
