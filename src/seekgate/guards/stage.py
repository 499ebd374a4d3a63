"""The guard stages of the request pipeline (see core/service.py for where each runs):

    admit      who is calling (API key), may they run this task, at what rate (429 + Retry-After)
    policy     deny patterns and the input size limit of the task's guard profile (403 / 413)
    inbound    secrets and PII replaced by placeholders before any model sees them; retrieved
               context and tool results screened for prompt injection
    outbound   RequestGuard: placeholders restored in the answer, secrets the model wrote
               redacted, dangerous commands flagged or stopped -- chunk by chunk
    settle     the tokens a request really used, counted against its limits
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import Iterable

import msgspec

from seekgate import errors
from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    FinishReason,
    Message,
    Request,
    Role,
    TextPart,
    ToolCallDelta,
    Usage,
)
from seekgate.guards.keys import KEY_PREFIX, ApiKey, KeyStore
from seekgate.guards.limits import Limit, RateLimiter
from seekgate.guards.output import OutputGuard, blocked_error
from seekgate.guards.scanner import Scanner
from seekgate.guards.scrub import LogScrubber
from seekgate.guards.types import Action, Finding, Kind
from seekgate.guards.vault import Vault, apply
from seekgate.settings import GuardProfile, GuardSettings, TaskProfile

__all__ = ["Caller", "GuardReport", "GuardStage", "RequestGuard"]

# Scanning is about 1 ms per KB: past this much text, or with NER, it runs off the event loop.
_INLINE_CHARS = 16_384


class Caller(msgspec.Struct, frozen=True):
    key: ApiKey | None = None

    @property
    def scope(self) -> str:
        return f"key:{self.key.id}" if self.key is not None else "anonymous"


class GuardReport:
    """What the guards found and did in one request: counts, never values."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, finding: Finding) -> None:
        self.counts[(finding.kind.value, finding.type, finding.action.value)] += 1

    def totals(self) -> dict[str, int]:
        """By kind and action: {"secret:redact": 2, "pii:redact": 1}."""
        totals: Counter[str] = Counter()
        for (kind, _, action), n in self.counts.items():
            totals[f"{kind}:{action}"] += n
        return dict(sorted(totals.items()))

    def header(self) -> str:
        """`pii:redact=1, secret:redact=2`, for x-seekgate-guards."""
        return ", ".join(f"{k}={n}" for k, n in self.totals().items())

    def summary(self) -> list[dict[str, object]]:
        return [{"kind": k, "type": t, "action": a, "count": n} for (k, t, a), n in sorted(self.counts.items())]


class RequestGuard:
    """One request's vault and report; guards its answer, whole or chunk by chunk."""

    def __init__(self, profile: GuardProfile, vault: Vault) -> None:
        self.profile = profile
        self.vault = vault
        self.report = GuardReport()
        self._text: OutputGuard | None = None
        self._tools: dict[int, OutputGuard] = {}
        self.blocked: Finding | None = None

    def output(self, *, json_string: bool = False) -> OutputGuard:
        return OutputGuard(self.profile, self.vault, self.report.record, json_string=json_string)

    def on_answer(self, answer: ChatResponse) -> ChatResponse:
        text_guard = self.output()
        answer.text = text_guard.feed(answer.text) + text_guard.finish()
        self.blocked = text_guard.blocked
        calls = []
        for call in answer.tool_calls:
            guard = self.output(json_string=True)
            arguments = guard.feed(call.arguments) + guard.finish()
            if guard.blocked is not None:
                self.blocked = self.blocked or guard.blocked
                continue
            calls.append(msgspec.structs.replace(call, arguments=arguments))
        answer.tool_calls = tuple(calls)
        if self.blocked is not None:
            # A whole answer stops where the command began, like a content filter would.
            answer.finish_reason = FinishReason.CONTENT_FILTER
            answer.tool_calls = ()
        return answer

    def on_chunk(self, chunk: Chunk) -> Chunk:
        """Guard one streamed chunk in place. When `blocked` is set afterwards, the chunk holds
        the safe text before the command, and the stream must end with blocked_error().

        What a guard holds back is released, in order, once what follows it starts: the text
        when the first tool call begins, a call when the next one begins, all at the end."""
        if self._text is None:
            self._text = self.output()
        if chunk.text:
            chunk.text = self._text.feed(chunk.text)
        deltas: list[ToolCallDelta] = []
        for delta in chunk.tool_calls:
            if delta.index not in self._tools:
                chunk.text += self._text.finish()
                deltas += self._finish_tools()
                self._tools[delta.index] = self.output(json_string=True)
            deltas.append(msgspec.structs.replace(delta, arguments=self._tools[delta.index].feed(delta.arguments)))
        if chunk.finish_reason is not None:
            chunk.text += self._text.finish()
            deltas += self._finish_tools()
        chunk.tool_calls = tuple(deltas)
        self.blocked = self._text.blocked or next((g.blocked for g in self._tools.values() if g.blocked), None)
        if self.blocked is not None:
            chunk.finish_reason, chunk.usage = None, None
        return chunk

    def drain(self) -> Chunk | None:
        """When a stream breaks off (an upstream error, no finish): what the guards still hold,
        checked like the rest (see `blocked` afterwards), so the client gets every safe piece."""
        if self._text is None:
            return None
        chunk = Chunk(text=self._text.finish(), tool_calls=tuple(self._finish_tools()))
        self.blocked = self._text.blocked or next((g.blocked for g in self._tools.values() if g.blocked), None)
        return chunk if chunk.text or chunk.tool_calls else None

    def _finish_tools(self) -> list[ToolCallDelta]:
        rests = ((index, guard.finish()) for index, guard in self._tools.items())
        return [ToolCallDelta(index=index, arguments=rest) for index, rest in rests if rest]

    def error(self) -> errors.OutputBlocked:
        assert self.blocked is not None
        return blocked_error(self.blocked)


class GuardStage:
    def __init__(
        self, settings: GuardSettings, keys: KeyStore, limiter: RateLimiter, scrubber: LogScrubber | None = None,
        vault_key: bytes | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.keys = keys
        self.limiter = limiter
        self.scrubber = scrubber
        self.scanner = Scanner()
        self._vault_key = vault_key or os.urandom(32)  # none given: placeholders for this process only
        self._deny = {name: [re.compile(p) for p in profile.deny] for name, profile in settings.profiles.items()}

    def profile(self, name: str) -> GuardProfile:
        return self.settings.profiles[name]

    # -- admit and settle -------------------------------------------------------------------

    async def authenticate(self, token: str | None) -> Caller:
        """A seekgate key (sgk_...) must be valid; other bearer tokens (SDKs always send one)
        count as no key, which require_keys refuses."""
        key = None
        if token and token.startswith(KEY_PREFIX):
            key = await asyncio.to_thread(self.keys.verify, token)
            if key is None:
                raise errors.AuthenticationFailed("the API key is not valid or was revoked", code="invalid_api_key")
        if key is None and self.settings.require_keys:
            raise errors.AuthenticationFailed(
                "an API key is required: send Authorization: Bearer sgk_... (or x-api-key); create one with `seekgate keys create`",
                code="missing_api_key",
            )
        return Caller(key)

    async def admit(self, caller: Caller, task: str, profile: TaskProfile, tokens: int) -> None:
        if caller.key is not None and not caller.key.allows(task):
            raise errors.PermissionDenied(
                f"this API key ({caller.key.name}) may run the tasks {', '.join(caller.key.tasks)}, not {task!r}", param="task"
            )
        # Both or neither: a request the task's bucket refuses must not spend the caller's allowance.
        task_limit = Limit(profile.requests_per_minute, profile.tokens_per_minute)
        await self.limiter.acquire_all(((caller.scope, self._caller_limit(caller)), (f"task:{task}", task_limit)), tokens)

    async def settle(self, caller: Caller, task: str, profile: TaskProfile, estimated: int, usage: Usage | None) -> None:
        if usage is None:
            return
        extra = usage.input_tokens + usage.output_tokens - estimated
        if extra > 0:
            await self.limiter.record(caller.scope, self._caller_limit(caller), extra)
            await self.limiter.record(f"task:{task}", Limit(profile.requests_per_minute, profile.tokens_per_minute), extra)

    def _caller_limit(self, caller: Caller) -> Limit:
        s = self.settings
        if caller.key is None:
            return Limit(s.anonymous_requests_per_minute, s.anonymous_tokens_per_minute)
        return Limit(caller.key.requests_per_minute or s.requests_per_minute, caller.key.tokens_per_minute or s.tokens_per_minute)

    # -- policy and inbound -----------------------------------------------------------------

    def check_policy(self, request: Request, profile_name: str) -> None:
        profile = self.profile(profile_name)
        texts = list(_texts(request))
        if profile.max_input_chars:
            size = sum(map(len, texts))
            if size > profile.max_input_chars:
                raise errors.PayloadTooLarge(
                    f"the request carries {size} characters of text; guard profile {profile_name!r} allows {profile.max_input_chars}"
                )
        for pattern in self._deny[profile_name]:
            if any(pattern.search(t) for t in texts):
                raise errors.PermissionDenied(
                    f"the request matches a deny pattern of guard profile {profile_name!r}: {pattern.pattern!r}", code="policy_denied"
                )

    async def inbound(
        self, request: Request, profile_name: str, *, trusted: Iterable[Message] = (), screened: Iterable[Message] = ()
    ) -> tuple[Request, RequestGuard]:
        """Redact, and screen for injection. `trusted` messages (the prompt pack) pass as they
        are; `screened` ones (retrieved context) and tool results are what an attacker can write
        into, so they are screened; the client's own turns are its business."""
        guard = RequestGuard(self.profile(profile_name), Vault(self._vault_key))
        marks = {id(m): False for m in trusted} | {id(m): True for m in screened}
        size = sum(len(t) for t in _texts(request))
        if size > _INLINE_CHARS or guard.profile.names:
            request = await asyncio.to_thread(self._inbound, request, guard, marks)
        else:
            request = self._inbound(request, guard, marks)
        return request, guard

    def _inbound(self, request: Request, guard: RequestGuard, marks: dict[int, bool]) -> Request:
        if isinstance(request, ChatRequest):
            messages = tuple(
                m if marks.get(id(m)) is False else self._message(m, guard, marks.get(id(m), False) or m.role is Role.TOOL)
                for m in request.messages
            )
            return msgspec.structs.replace(request, messages=messages)
        prompt = self._text(request.prompt, guard, injection=False)
        suffix = self._text(request.suffix, guard, injection=False) if request.suffix else request.suffix
        return msgspec.structs.replace(request, prompt=prompt, suffix=suffix)

    def _message(self, message: Message, guard: RequestGuard, screen: bool) -> Message:
        parts = tuple(TextPart(self._text(p.text, guard, injection=screen)) if isinstance(p, TextPart) else p for p in message.content)
        calls = tuple(msgspec.structs.replace(c, arguments=self._text(c.arguments, guard, injection=False)) for c in message.tool_calls)
        return msgspec.structs.replace(message, content=parts, tool_calls=calls)

    def _text(self, text: str, guard: RequestGuard, *, injection: bool) -> str:
        if not text:
            return text
        findings = self.scanner.scan(text, guard.profile, injection=injection)
        if not findings:
            return text
        for f in findings:
            guard.report.record(f)
            if f.kind is Kind.INJECTION and f.action is Action.BLOCK:
                raise errors.PermissionDenied(
                    f"a tool result or retrieved document looks like a prompt injection ({f.type}); "
                    "the guard profile of this task refuses it",
                    code="prompt_injection",
                )
        if self.scrubber is not None:
            self.scrubber.remember(text[f.start : f.end] for f in findings if f.kind in (Kind.SECRET, Kind.PII))
        return apply(text, findings, guard.vault)


def _texts(request: Request) -> Iterable[str]:
    if isinstance(request, ChatRequest):
        for m in request.messages:
            yield m.text
            for c in m.tool_calls:
                yield c.arguments
    else:
        yield request.prompt
        if request.suffix:
            yield request.suffix
