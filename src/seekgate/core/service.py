"""The shared inference path every dialect calls.

    task profile   X-Task-Type, metadata.task_type, the classifier, or the default task
    admit          API key, the key's task allowlist, rate limits (guards/stage.py)
    policy         deny patterns, input size (the task's guard profile)
    prompt pack    the profile's pack (or X-Prompt-Pack) as the first system message
    context        retrieved code and docs (context/stage.py)
    pre-guards     secrets and PII to placeholders; context and tool results screened
    cache lookup   exact match on everything that changes the answer (cache/base.py)
    route          the request's model, or the profile's route; fallback, retries, breaker
    backend        chat() / stream()
    cache store    the model's answer as written (placeholders in, never the values)
    post-guards    placeholders restored, secrets and dangerous commands caught, on the stream

What it decided goes into the request's trace (telemetry/record.py) for metrics and logs.

Every dialect calls this one path, so each stage reaches all of them at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import msgspec

from seekgate import errors
from seekgate.backends.registry import ModelEntry, Registry
from seekgate.core.types import ChatRequest, ChatResponse, Chunk, CompletionRequest, Message, Request, Role, TextPart, Usage
from seekgate.prompts.packs import PackStore, PromptPack
from seekgate.reviews.store import Review, ReviewStore
from seekgate.routing.router import Attempts, Router, estimate_tokens
from seekgate.routing.sessions import session_key
from seekgate.context.stage import ContextStage, UsedContext, parse_refs
from seekgate.guards.stage import Caller, GuardStage, RequestGuard
from seekgate.routing.tasks import TaskChoice, choose_task
from seekgate.settings import RISK_LEVELS, Settings
from seekgate.cache.base import AnswerCollector, ResponseCache, cache_key, deterministic, replay
from seekgate.telemetry.record import CacheResult, Trace

__all__ = ["REVIEW", "Gateway", "Hints", "OpenStream", "Outcome", "verify"]

REVIEW = "review"


class Hints(msgspec.Struct, frozen=True):
    """What a dialect read from the transport (HTTP headers) that steers a request."""

    task: str | None = None
    pack: str | None = None
    risk: str | None = None
    model: str | None = None
    """X-Model-Alias: pins this request to an alias or `family@version`, over the body's model."""
    session: str | None = None
    """X-Session-Id: keeps a conversation's turns where its prefix is cached."""
    context: str | None = None
    """X-Context-Refs: `repo[@commit][,path...]`, the index and files the context comes from."""
    api_key: str | None = None
    """Authorization: Bearer ..., or x-api-key."""
    fresh: bool = False
    """Cache-Control: no-cache: answer from the model, not the cache (the answer is stored)."""
    trace: Trace | None = None
    """Where the request's figures go (the telemetry middleware made it); None outside HTTP."""


@dataclass
class Outcome:
    task: TaskChoice
    pack: PromptPack | None
    attempts: Attempts
    risk: str | None = None
    escalated: str | None = None
    review: Review | None = None
    """Set when the answer waits for a human reviewer instead of going to the client."""
    backend: str | None = None
    """The backend that answered, when the model has replicas."""
    session: str | None = None
    context: UsedContext | None = None
    """The retrieved context injected into the request, and later its citations' check."""
    guard: RequestGuard | None = None
    caller: Caller = Caller()
    estimated_tokens: int = 0
    """The input tokens admitted against the rate limits before the answer was known."""
    cache: CacheResult = "off"

    @property
    def entry(self) -> ModelEntry:
        assert self.attempts.served is not None
        return self.attempts.served

    def headers(self) -> dict[str, str]:
        out = {
            "x-seekgate-task": self.task.name,
            "x-seekgate-model": self.entry.alias,
            "x-seekgate-backend": self.backend or self.entry.backend_name,
        }
        if self.pack is not None:
            out["x-seekgate-pack"] = self.pack.ref
        fallback = self.attempts.fallback_header()
        if fallback:
            out["x-seekgate-fallback"] = fallback
        slo = self.attempts.slo_header()
        if slo:
            out["x-seekgate-slo"] = slo
        if self.escalated:
            out["x-seekgate-escalated"] = self.escalated
        if self.session:
            out["x-seekgate-session"] = self.session
        if self.context is not None:
            out["x-seekgate-context"] = self.context.header()
            citations = self.context.citations_header()
            if citations:
                out["x-seekgate-citations"] = citations
        if self.guard is not None and self.guard.report.counts:
            out["x-seekgate-guards"] = self.guard.report.header()
        out["x-seekgate-cache"] = self.cache
        return out


class OpenStream:
    """A stream whose first chunk has already arrived, so failures before any output surface
    as ordinary errors (a proper HTTP status) instead of an error event inside a 200 stream."""

    def __init__(
        self,
        outcome: Outcome,
        first: Chunk,
        rest: AsyncIterator[Chunk],
        on_end: Callable[[Chunk], Awaitable[None]],
        stage: ContextStage | None = None,
        collector: AnswerCollector | None = None,
    ) -> None:
        self.outcome = outcome
        self._first: Chunk | None = first
        self._rest = rest
        self._on_end = on_end
        self._stage = stage
        self.collector = collector
        """Gathers the answer as the model wrote it (before the output guards), for the cache
        and the request log."""
        self._text: list[str] = []
        self._ending: BaseException | None = None
        """Raised on the next step: a blocked answer's error, or a broken stream's end or error."""

    @property
    def entry(self) -> ModelEntry:
        return self.outcome.entry

    def __aiter__(self) -> OpenStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._ending is not None:
            raise self._ending
        guard = self.outcome.guard
        if self._first is not None:
            chunk, self._first = self._first, None
        else:
            try:
                chunk = await anext(self._rest)
            except (StopAsyncIteration, errors.SeekgateError) as exc:
                # Broken off: first what the guards still hold, then the end or the error.
                rest = guard.drain() if guard is not None else None
                ending = guard.error() if guard is not None and guard.blocked is not None else exc
                if rest is None:
                    raise ending
                self._ending = ending
                return rest
        if self.collector is not None:
            self.collector.add(chunk)
        if guard is not None:
            chunk = guard.on_chunk(chunk)
            if guard.blocked is not None:
                # Send the safe text before the command, then end with the error; stop generating.
                self._ending = guard.error()
                await self.aclose()
                return chunk
        if chunk.finish_reason is not None:
            await self._on_end(chunk)
        used = self.outcome.context
        if used is not None and self._stage is not None and not used.note:
            # Citations are checked on the whole answer: the text is kept as it streams by.
            self._text.append(chunk.text)
            if chunk.finish_reason is not None:
                await self._stage.check(used, "".join(self._text))
                chunk.context = used.metadata()
        return chunk

    async def aclose(self) -> None:
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


class Gateway:
    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        packs: PackStore,
        reviews: ReviewStore,
        context: ContextStage | None = None,
        guards: GuardStage | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.context = context
        self.guards = guards
        self.cache = cache
        self.registry = registry
        self.settings = settings
        self.packs = packs
        self.reviews = reviews
        self.router = Router(registry, settings.routing)

    async def _plan(self, request: Request, hints: Hints, *, admit: bool = True) -> tuple[Outcome, Request, list[ModelEntry]]:
        routing = self.settings.routing
        task = choose_task(request, hints.task, self.settings.tasks, routing.default_task, routing.classify)
        if hints.trace is not None:
            hints.trace.task = task.name
        guards = self.guards
        caller, estimated = Caller(), estimate_tokens(request)
        if guards is not None:
            caller = await guards.authenticate(hints.api_key)
            if hints.trace is not None:
                hints.trace.caller = caller.scope
            guards.check_policy(request, task.profile.guard_profile)
            if admit:
                await guards.admit(caller, task.name, task.profile, estimated)
        risk = None
        if hints.risk is not None:
            risk = hints.risk.strip().lower()
            if risk not in RISK_LEVELS:
                raise errors.InvalidRequest(f"unknown risk level {risk!r}; allowed: {', '.join(RISK_LEVELS)}", param="X-Risk-Level")
            if risk not in task.profile.risk_levels:
                raise errors.PermissionDenied(
                    f"task {task.name!r} accepts risk levels {', '.join(task.profile.risk_levels)}, not {risk!r}", param="X-Risk-Level"
                )
        pack = None
        if hints.pack:
            if hints.pack.strip().lower() != "none":
                pack = self.packs.get(hints.pack.strip(), param="X-Prompt-Pack")
        elif task.profile.pack:
            pack = self.packs.get(task.profile.pack, param="tasks." + task.name + ".pack")
        if hints.model:
            request = msgspec.structs.replace(request, model=hints.model.strip())
        if isinstance(request, ChatRequest):
            request = msgspec.structs.replace(request, session=session_key(request, hints.session))
        request = _prepare(request, pack, task.profile.max_tokens)
        attempts = Attempts()
        session = request.session if isinstance(request, ChatRequest) else None
        outcome = Outcome(task, pack, attempts, risk=risk, session=session, caller=caller, estimated_tokens=estimated if admit else 0)
        refs = parse_refs(hints.context)
        before = request
        if isinstance(request, ChatRequest) and (task.profile.retrieval or refs is not None):
            if self.context is None:
                raise errors.Unsupported("this gateway has no context index configured", param="X-Context-Refs")
            request, outcome.context = await self.context.attach(request, task.profile.retrieval, refs)
        if guards is not None:
            trusted = request.messages[:1] if pack is not None and isinstance(request, ChatRequest) else ()
            screened = _added(before, request)
            request, outcome.guard = await guards.inbound(request, task.profile.guard_profile, trusted=trusted, screened=screened)
        target = task.profile.on_high_risk
        if risk == "high" and target and target != REVIEW:
            outcome.escalated = f"high risk: {target}"
            return outcome, request, [self.registry.get(target)]
        return outcome, request, self.router.candidates(request, task.profile, attempts)

    async def count_tokens(self, request: Request, hints: Hints = Hints()) -> int:
        """The prompt tokens the first model on the route would see (its pack included)."""
        outcome, request, candidates = await self._plan(request, hints, admit=False)
        for entry in candidates:
            count = getattr(entry.backend, "count_tokens", None)
            if count is not None:
                try:
                    return int(await count(request))
                except errors.ModelNotReady:
                    continue  # the next model on the route may be loaded
        return estimate_tokens(request)

    def holds_for_review(self, request: Request, hints: Hints) -> bool:
        """True when this request's answer goes to the review queue, so it cannot stream."""
        if not hints.risk or hints.risk.strip().lower() != "high":
            return False
        task = choose_task(request, hints.task, self.settings.tasks, self.settings.routing.default_task, self.settings.routing.classify)
        return task.profile.on_high_risk == REVIEW

    async def chat(self, request: Request, hints: Hints = Hints()) -> tuple[Outcome, ChatResponse]:
        outcome, request, candidates = await self._plan(request, hints)
        _expect(hints.trace, candidates)
        plan = self._cache_key(outcome, request, candidates)
        cached = await self._lookup(plan, outcome, hints)
        if cached is not None:
            answer = cached
        else:
            answer = await self.router.chat(candidates, request, outcome.attempts, lambda e, r: e.backend.chat(r))
            elapsed = (time.perf_counter() - outcome.attempts.served_since) * 1000
            self.router.slo.record(outcome.entry.alias, outcome.task.name, elapsed)
            self._trace_slo(hints.trace, outcome, elapsed)
            if plan is not None:
                await self._store(plan, outcome, answer)
        outcome.backend = answer.backend
        written = answer.text
        if outcome.guard is not None:
            answer = outcome.guard.on_answer(answer)
        if outcome.cache != "hit":
            await self._settle(outcome, answer.usage)
        if outcome.context is not None and self.context is not None and not outcome.context.note:
            await self.context.check(outcome.context, answer.text)
            answer.context = outcome.context.metadata()
        profile = outcome.task.profile
        if outcome.risk == "high" and profile.on_high_risk == REVIEW:
            outcome.review = await self.reviews.submit(
                outcome.task.name, outcome.entry.alias, msgspec.to_builtins(request), answer.text,
                {"prompt_tokens": answer.usage.input_tokens, "completion_tokens": answer.usage.output_tokens},
            )  # fmt: skip
        elif outcome.risk == "med" and profile.on_flagged:
            flag = verify(request, answer)
            if flag is not None:
                outcome.escalated = f"flagged ({flag}): {profile.on_flagged}"
                target = [self.registry.get(profile.on_flagged)]
                answer = await self.router.chat(target, request, outcome.attempts, lambda e, r: e.backend.chat(r))
                outcome.backend = answer.backend
                written = answer.text
                if outcome.guard is not None:
                    answer = outcome.guard.on_answer(answer)
        self._trace(hints.trace, outcome, request, None if outcome.cache == "hit" else answer.usage, written)
        return outcome, answer

    def _cache_key(self, outcome: Outcome, request: Request, candidates: list[ModelEntry]) -> tuple[str, ModelEntry] | None:
        """The cache key, and the model it names, when this request may be answered from (and
        stored in) the cache: a cacheable task, a deterministic request, and an answer that
        goes straight back (no risk review or verification in between)."""
        if self.cache is None or not outcome.task.profile.cacheable or not deterministic(request) or not candidates:
            return None
        if outcome.risk not in (None, "low") or outcome.escalated:
            return None
        context = outcome.context.header() if outcome.context is not None else None
        pack = outcome.pack.ref if outcome.pack is not None else None
        expected = self._expected(candidates)
        return cache_key(request, task=outcome.task.name, pack=pack, model=_model_identity(expected), context=context), expected

    def _expected(self, candidates: list[ModelEntry]) -> ModelEntry:
        """The model expected to answer: the first on the route that is not known to be out
        (an open circuit, embedded weights not present). The cache key names it."""
        for entry in candidates:
            if self.router.breaker.state(entry.alias) != "open" and getattr(entry.backend, "weights", True) is not None:
                return entry
        return candidates[-1]

    async def _lookup(self, plan: tuple[str, ModelEntry] | None, outcome: Outcome, hints: Hints) -> ChatResponse | None:
        """The cached answer, or None; sets outcome.cache (hit, miss, bypass, or off)."""
        if plan is None or self.cache is None:
            return None
        if hints.fresh:
            outcome.cache = "bypass"
            return None
        answer = await self.cache.lookup(plan[0])
        outcome.cache = "miss" if answer is None else "hit"
        if answer is not None:
            outcome.attempts.served = plan[1]
        return answer

    async def _store(self, cached: tuple[str, ModelEntry], outcome: Outcome, answer: ChatResponse) -> None:
        """Only the model the key names stores under it: another model's answer (a fallback
        after a failure) is not what the key promises."""
        key, expected = cached
        if self.cache is not None and outcome.attempts.served is expected:
            await self.cache.store(key, msgspec.structs.replace(answer))

    async def _settle(self, outcome: Outcome, usage: Usage | None) -> None:
        if self.guards is not None and outcome.estimated_tokens:
            task = outcome.task
            await self.guards.settle(outcome.caller, task.name, task.profile, outcome.estimated_tokens, usage)

    def _trace_slo(self, trace: Trace | None, outcome: Outcome, elapsed_ms: float) -> None:
        slo = outcome.task.profile.slo_p95_ms
        if trace is not None and slo and elapsed_ms > slo:
            trace.slo_breach = True

    def _trace(self, trace: Trace | None, outcome: Outcome, request: Request, usage: Usage | None, written: str | None) -> None:
        """What the request came to, for metrics, the log line and the request log. A cache
        hit used no model tokens, so it counts none."""
        if trace is None:
            return
        if outcome.attempts.served is not None:
            trace.model = outcome.entry.alias
            trace.backend = outcome.backend or outcome.entry.backend_name
        trace.cache = outcome.cache
        trace.fallbacks = tuple(f"{alias}={reason}" for alias, reason in outcome.attempts.skipped)
        trace.escalated = outcome.escalated
        if outcome.guard is not None:
            trace.guards = outcome.guard.report.totals()
        if usage is not None:
            trace.input_tokens, trace.output_tokens = usage.input_tokens, usage.output_tokens
        if self.settings.telemetry.log_prompts:
            scrub = self.guards.scrubber.scrub if self.guards is not None and self.guards.scrubber is not None else str
            trace.prompt = scrub(_prompt_text(request))
            trace.answer = scrub(written) if written is not None else None

    async def stream(self, request: Request, hints: Hints = Hints()) -> OpenStream:
        outcome, request, candidates = await self._plan(request, hints)
        _expect(hints.trace, candidates)
        trace = hints.trace
        if trace is not None:
            trace.stream = True
        plan = self._cache_key(outcome, request, candidates)
        cached = await self._lookup(plan, outcome, hints)
        if cached is not None:
            pieces = replay(cached)
            first, rest = pieces[0], _aiter(pieces[1:])
        else:
            first, rest = await self.router.open_stream(candidates, request, outcome.attempts)
        started = outcome.attempts.served_since
        ttft = (time.perf_counter() - started) * 1000
        if trace is not None:
            trace.first_byte = time.perf_counter()
        outcome.backend = first.backend
        collector = AnswerCollector() if plan is not None or self.settings.telemetry.log_prompts else None

        async def on_end(last: Chunk) -> None:
            written = None
            if collector is not None:
                answer = collector.answer(outcome.entry.alias)
                written = answer.text if answer is not None else None
                if plan is not None and answer is not None and outcome.cache != "hit":
                    await self._store(plan, outcome, answer)
            if outcome.cache != "hit":
                elapsed = (time.perf_counter() - started) * 1000
                self.router.slo.record(outcome.entry.alias, outcome.task.name, elapsed, ttft)
                self._trace_slo(trace, outcome, elapsed)
                await self._settle(outcome, last.usage)
            self._trace(trace, outcome, request, None if outcome.cache == "hit" else last.usage, written)

        if trace is not None:
            self._trace(trace, outcome, request, None, None)  # known now, in case the stream breaks off
        return OpenStream(outcome, first, rest, on_end, self.context, collector)


def _expect(trace: Trace | None, candidates: list[ModelEntry]) -> None:
    """Until a model answers, the request is the route's first model's: a failure counts there."""
    if trace is not None and candidates:
        trace.model = candidates[0].alias


async def _aiter(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


def _model_identity(entry: ModelEntry) -> str:
    """What a cached answer was generated by: the alias, its backend and model, and the weights
    file it runs now (a hot swap changes the answers)."""
    spec = entry.spec
    weights = getattr(entry.backend, "weights", None)
    source = spec.upstream_model or spec.path or f"{spec.hf_repo}/{spec.hf_file}"
    return f"{entry.alias}|{entry.backend_name}|{source}|{weights}"


def _prompt_text(request: Request) -> str:
    """The prompt as the model saw it (pack, context, placeholders), for the request log."""
    if isinstance(request, CompletionRequest):
        return request.prompt if request.suffix is None else f"{request.prompt}<suffix>{request.suffix}"
    return json.dumps([{"role": m.role.value, "content": m.text} for m in request.messages], ensure_ascii=False)


def _added(before: Request, after: Request) -> tuple[Message, ...]:
    """The messages a stage put into the request (the retrieved context)."""
    if not isinstance(before, ChatRequest) or not isinstance(after, ChatRequest):
        return ()
    known = {id(m) for m in before.messages}
    return tuple(m for m in after.messages if id(m) not in known)


def verify(request: Request, answer: ChatResponse) -> str | None:
    """Cheap checks on a finished answer; a reason when it should be escalated, else None.
    (The guards of the post-filter stage add their own flags here.)"""
    if not answer.text.strip() and not answer.tool_calls:
        return "empty answer"
    fmt = request.response_format if isinstance(request, ChatRequest) else None
    if fmt is not None and fmt.type != "text":
        try:
            json.loads(answer.text)
        except ValueError:
            return "not the JSON the response format asks for"
    return None


def _prepare(request: Request, pack: PromptPack | None, default_max_tokens: int) -> Request:
    """Inject the pack ahead of the client's own system message (which stays) and apply the
    profile's default max_tokens when the client set none."""
    changes: dict[str, object] = {}
    if default_max_tokens and request.sampling.max_tokens is None:
        changes["sampling"] = msgspec.structs.replace(request.sampling, max_tokens=default_max_tokens)
    if pack is not None and isinstance(request, ChatRequest):
        changes["messages"] = (Message(role=Role.SYSTEM, content=(TextPart(pack.body),)), *request.messages)
    return msgspec.structs.replace(request, **changes) if changes else request
