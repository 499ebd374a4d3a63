"""The embedded llama.cpp engine: one memory-mapped model, several contexts, blocking calls.

Everything here runs on worker threads, never on the event loop (the async side is
`backend.py`). One `llama_model` is loaded once; each of `parallel` contexts holds its own KV
cache over those shared weights, so concurrent requests cost KV memory, not another copy of the
model. Generation checks a cancel flag between tokens, so a client that leaves stops it.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import JSON_GBNF

from seekgate import errors
from seekgate.backends.llamacpp.prefixes import PrefixStore
from seekgate.core.types import FinishReason
from seekgate.tools.grammar import schema_to_gbnf

__all__ = ["EngineOptions", "GenerationParams", "GenerationResult", "LlamaEngine", "ModelInfo", "common_prefix", "free_cores", "grammar_for"]

_backend_ready = threading.Lock()
_backend_initialised = False

# ChatML, for GGUFs that carry no chat template of their own.
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


_llama_log = logging.getLogger("seekgate.llamacpp")


@llama_cpp.llama_log_callback  # type: ignore[misc]
def _forward_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation; info is load chatter.
    if level in (3, 4):
        _llama_log.warning("%s", text.decode(errors="replace").rstrip())
    elif _llama_log.isEnabledFor(logging.DEBUG):
        _llama_log.debug("%s", text.decode(errors="replace").rstrip())


def free_cores() -> int:
    """The cores this process may run on (its CPU affinity), which is what the engine should use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class EngineOptions:
    threads: int = 0
    parallel: int = 2
    context_tokens: int = 4096
    batch_tokens: int = 512
    mmap: bool = True
    prefix_cache: bool = True
    prefix_save_tokens: int = 1024
    """Prompts at least this long leave their context's state in the prefix store, if any."""


# A saved state is restored only when it covers this many more tokens than the context already
# holds: restoring reads the whole state, which beats recomputing all but a few tokens.
_RESTORE_GAIN = 32


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    parameters: int
    size_bytes: int
    context_train: int
    context_tokens: int
    fim_tokens: tuple[int, int, int] | None
    chat_template: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    grammar: str | None = None


@dataclass
class GenerationResult:
    finish_reason: FinishReason = FinishReason.STOP
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    stop_sequence: str | None = None


@dataclass
class _Slot:
    ctx: llama_cpp.llama_context_p
    tokens: list[int] = field(default_factory=list)
    """The tokens whose keys and values this context holds, for prefix reuse."""


class LlamaEngine:
    def __init__(self, path: str, options: EngineOptions, chat_template: str | None = None, prefixes: PrefixStore | None = None) -> None:
        self.path = path
        self.options = options
        self._template_override = chat_template
        self.prefixes = prefixes if options.prefix_cache else None
        self._model: llama_cpp.llama_model_p | None = None
        self._slots: list[_Slot] = []
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.info: ModelInfo | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> ModelInfo:
        global _backend_initialised
        with _backend_ready:
            if not _backend_initialised:
                llama_cpp.llama_backend_init()
                # After init, which resets it: llama.cpp's own log goes to our logger, not stderr.
                llama_cpp.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
                _backend_initialised = True
        if not os.path.exists(self.path):
            raise errors.ModelNotReady(f"model file {self.path} does not exist")
        params = llama_cpp.llama_model_default_params()
        params.use_mmap = self.options.mmap
        model = llama_cpp.llama_model_load_from_file(self.path.encode(), params)
        if not model:
            raise errors.ModelNotReady(f"llama.cpp could not load {self.path} (unsupported or corrupt GGUF)")
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        train = llama_cpp.llama_model_n_ctx_train(model)
        n_ctx = self.options.context_tokens or min(train, 32768)
        threads = self.options.threads or free_cores()
        for _ in range(self.options.parallel):
            cparams = llama_cpp.llama_context_default_params()
            cparams.n_ctx = n_ctx
            cparams.n_batch = self.options.batch_tokens
            cparams.n_ubatch = self.options.batch_tokens
            cparams.n_seq_max = 1
            cparams.n_threads = threads
            cparams.n_threads_batch = threads
            cparams.no_perf = True
            ctx = llama_cpp.llama_init_from_model(model, cparams)
            if not ctx:
                self.close()
                raise errors.ModelNotReady(f"llama.cpp could not create a {n_ctx}-token context for {self.path}")
            self._slots.append(_Slot(ctx=ctx))
        fim = tuple(int(f(self._vocab)) for f in (llama_cpp.llama_vocab_fim_pre, llama_cpp.llama_vocab_fim_suf, llama_cpp.llama_vocab_fim_mid))
        template = self._template_override or self._meta("tokenizer.chat_template") or _FALLBACK_TEMPLATE
        self.info = ModelInfo(
            architecture=self._meta("general.architecture") or "unknown",
            parameters=int(llama_cpp.llama_model_n_params(model)),
            size_bytes=int(llama_cpp.llama_model_size(model)),
            context_train=int(train),
            context_tokens=int(llama_cpp.llama_n_ctx(self._slots[0].ctx)),
            fim_tokens=fim if all(t >= 0 for t in fim) else None,  # type: ignore[arg-type]
            chat_template=template,
        )
        bos, eos = llama_cpp.llama_vocab_bos(self._vocab), llama_cpp.llama_vocab_eos(self._vocab)
        self._formatter = Jinja2ChatFormatter(
            template=template,
            bos_token=self._piece(bos, special=True).decode(errors="replace") if bos >= 0 else "",
            eos_token=self._piece(eos, special=True).decode(errors="replace") if eos >= 0 else "",
        )
        return self.info

    def close(self) -> None:
        """Free the contexts and the model; the prefix store (given to this engine) finishes its writes."""
        if self.prefixes is not None:
            self.prefixes.close()
        for slot in self._slots:
            llama_cpp.llama_free(slot.ctx)
        self._slots.clear()
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    @property
    def slots(self) -> int:
        return len(self._slots)

    def cached_tokens(self, slot: int) -> list[int]:
        """The tokens whose keys and values context `slot` holds (read it only while it is free)."""
        return self._slots[slot].tokens

    # -- text <-> tokens ---------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode(errors="replace")

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode()
        capacity = len(data) + 8
        buf = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, capacity, add_special, parse_special)
        if n < 0:
            capacity = -n
            buf = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, capacity, add_special, parse_special)
        return list(buf[:n])

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self._piece(t) for t in tokens).decode(errors="replace")

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """Render messages with the model's chat template and tokenize the result."""
        try:
            prompt = self._formatter(messages=messages).prompt
        except Exception as exc:  # jinja templates raise anything, often on a role they refuse
            if messages and messages[0]["role"] == "system" and len(messages) > 1:
                # Templates without a system role (some Mistral/Gemma ones): fold it into the first turn.
                merged = [{"role": messages[1]["role"], "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.chat_prompt(merged + messages[2:])
            raise errors.InvalidRequest(f"the model's chat template refused these messages: {exc}") from None
        tokens = self.tokenize(prompt, add_special=True, parse_special=True)
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        if len(tokens) > 1 and tokens[0] == bos and tokens[1] == bos:
            tokens = tokens[1:]  # the template wrote BOS and the tokenizer added another
        return tokens

    def completion_prompt(self, prompt: str, suffix: str | None) -> list[int]:
        if suffix is None:
            return self.tokenize(prompt, add_special=True, parse_special=True)
        assert self.info is not None
        if self.info.fim_tokens is None:
            raise errors.Unsupported("this model has no fill-in-the-middle tokens; `suffix` needs a FIM model such as DeepSeek-Coder", param="suffix")
        pre, suf, mid = self.info.fim_tokens
        tokens = [pre, *self.tokenize(prompt, add_special=False, parse_special=False), suf]
        tokens += [*self.tokenize(suffix, add_special=False, parse_special=False), mid]
        if llama_cpp.llama_vocab_get_add_bos(self._vocab):
            tokens.insert(0, llama_cpp.llama_vocab_bos(self._vocab))
        return tokens

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        slot_index: int,
        prompt: Sequence[int],
        params: GenerationParams,
        emit: Callable[[str], None],
        cancel: threading.Event,
    ) -> GenerationResult:
        """Generate on one context until a stop, the token limit, the context end or `cancel`."""
        slot = self._slots[slot_index]
        n_ctx = llama_cpp.llama_n_ctx(slot.ctx)
        if len(prompt) >= n_ctx:
            raise errors.InvalidRequest(
                f"the prompt is {len(prompt)} tokens; this model's context window is {n_ctx} tokens", code="context_length_exceeded"
            )
        sampler = _Sampler(self._vocab, params)
        with self._busy_lock:
            self._busy += 1
        try:
            result = self._run(slot, list(prompt), params, sampler, emit, cancel, n_ctx)
            if self.prefixes is not None and result.finish_reason is not FinishReason.CANCELLED and len(prompt) >= self.options.prefix_save_tokens:
                self._save(slot)
            return result
        finally:
            with self._busy_lock:
                self._busy -= 1
            sampler.close()

    def _share_threads(self, slot: _Slot) -> None:
        # Busy contexts split the cores between them instead of oversubscribing them.
        total = self.options.threads or free_cores()
        n = max(1, total // max(1, self._busy))
        llama_cpp.llama_set_n_threads(slot.ctx, n, n)

    def _run(
        self,
        slot: _Slot,
        prompt: list[int],
        params: GenerationParams,
        sampler: _Sampler,
        emit: Callable[[str], None],
        cancel: threading.Event,
        n_ctx: int,
    ) -> GenerationResult:
        result = GenerationResult(prompt_tokens=len(prompt))
        memory = llama_cpp.llama_get_memory(slot.ctx)
        reuse = common_prefix(slot.tokens, prompt) if self.options.prefix_cache else 0
        if self.prefixes is not None:
            reuse = self._restore(slot, prompt, reuse)
        reuse = min(reuse, len(prompt) - 1)  # the last prompt token must be decoded for logits
        if reuse <= 0 or not llama_cpp.llama_memory_seq_rm(memory, 0, reuse, -1):
            llama_cpp.llama_memory_clear(memory, True)
            reuse = 0
        slot.tokens = prompt[:reuse]
        result.cached_tokens = reuse
        # The last prompt token is decoded on its own, whether or not the rest came from the
        # prefix cache: llama.cpp's batched and single-token kernels round differently, and this
        # way a repeated greedy request gives the same answer with or without a cache hit.
        step = self.options.batch_tokens
        for start in range(reuse, len(prompt) - 1, step):
            if cancel.is_set():
                result.finish_reason = FinishReason.CANCELLED
                return result
            self._decode(slot, prompt[start : min(start + step, len(prompt) - 1)])
        self._decode(slot, prompt[-1:])

        limit = n_ctx - len(prompt)
        if params.max_tokens is not None:
            limit = min(limit, params.max_tokens)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = _StopMatcher(params.stop)
        while True:
            if cancel.is_set():
                result.finish_reason = FinishReason.CANCELLED
                return result
            if result.completion_tokens >= limit:
                result.finish_reason = FinishReason.LENGTH
                break
            token = sampler.sample(slot.ctx)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                break
            result.completion_tokens += 1
            text, stopped = stops.feed(decoder.decode(self._piece(token)))
            if text:
                emit(text)
            if stopped:
                result.stop_sequence = stops.matched
                return result
            self._decode(slot, [token])
        tail = stops.flush(decoder.decode(b"", final=True))
        if tail:
            emit(tail)
        return result

    def _restore(self, slot: _Slot, prompt: list[int], reuse: int) -> int:
        """Load the saved state that covers most of `prompt` into the context, if it beats what
        the context holds; returns how many prompt tokens the context now holds."""
        assert self.prefixes is not None
        entry, length = self.prefixes.best(np.asarray(prompt, dtype=np.int32))
        if entry is None or length < reuse + _RESTORE_GAIN:
            return reuse
        data = self.prefixes.load(entry)
        if data is None:
            return reuse
        memory = llama_cpp.llama_get_memory(slot.ctx)
        llama_cpp.llama_memory_clear(memory, True)
        slot.tokens = []
        if not llama_cpp.llama_state_seq_set_data(slot.ctx, (ctypes.c_uint8 * len(data)).from_buffer(data), len(data), 0):
            # Saved under other context settings (a smaller window, say): drop it, compute afresh.
            _llama_log.warning("a saved prefix of %d tokens did not fit this context; recomputing it", len(entry.tokens))
            llama_cpp.llama_memory_clear(memory, True)
            self.prefixes.discard(entry)
            return 0
        slot.tokens = entry.tokens.tolist()
        return length

    def _save(self, slot: _Slot) -> None:
        """Copy the context's state into the prefix store, unless a saved state covers it."""
        assert self.prefixes is not None
        tokens = np.asarray(slot.tokens, dtype=np.int32)
        if not len(tokens) or self.prefixes.covers(tokens):
            return
        size = llama_cpp.llama_state_seq_get_size(slot.ctx, 0)
        buf = bytearray(size)
        n = llama_cpp.llama_state_seq_get_data(slot.ctx, (ctypes.c_uint8 * size).from_buffer(buf), size, 0)
        if n:
            self.prefixes.put(tokens, buf if n == size else buf[:n])

    def _decode(self, slot: _Slot, tokens: list[int]) -> None:
        self._share_threads(slot)
        arr = (llama_cpp.llama_token * len(tokens))(*tokens)
        batch = llama_cpp.llama_batch_get_one(arr, len(tokens))
        code = llama_cpp.llama_decode(slot.ctx, batch)
        if code != 0:
            slot.tokens = []
            raise errors.SeekgateError(f"llama.cpp failed to decode a batch (code {code})")
        slot.tokens.extend(tokens)



class _Sampler:
    """The sampler chain, with a grammar applied the way llama.cpp's own server does it.

    A grammar checked against the whole vocabulary at every step is slow (tens of thousands
    of candidates through the grammar's stacks). So: sample from the unconstrained chain, ask
    the grammar about that one token, and only if it refuses, constrain the full candidate
    list and sample again. Most tokens pass, so constrained output costs little extra.
    """

    def __init__(self, vocab: llama_cpp.llama_vocab_p, params: GenerationParams) -> None:
        self._chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        self._grammar = None
        add = lambda s: llama_cpp.llama_sampler_chain_add(self._chain, s)  # noqa: E731
        if params.frequency_penalty or params.presence_penalty:
            add(llama_cpp.llama_sampler_init_penalties(64, 1.0, params.frequency_penalty, params.presence_penalty))
        if params.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(llama_cpp.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            add(llama_cpp.llama_sampler_init_temp(params.temperature))
            seed = params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
            add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        if params.grammar is not None:
            self._grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
            if not self._grammar:
                self.close()
                raise errors.InvalidRequest("the response format could not be compiled to a grammar", param="response_format")
            n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
            self._ids = np.arange(n_vocab, dtype=np.intc)
            self._data = np.zeros(n_vocab, dtype=_TOKEN_DATA)
            self._one = np.zeros(1, dtype=_TOKEN_DATA)

    def sample(self, ctx: llama_cpp.llama_context_p) -> int:
        if self._grammar is None:
            return int(llama_cpp.llama_sampler_sample(self._chain, ctx, -1))
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(len(self._ids),))
        token = self._pick(logits, constrained=False)
        self._one[0] = (token, 1.0, 0.0)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(_candidates(self._one)))
        if not np.isfinite(self._one[0]["logit"]):
            token = self._pick(logits, constrained=True)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        llama_cpp.llama_sampler_accept(self._chain, token)
        return token

    def _pick(self, logits: np.ndarray, *, constrained: bool) -> int:
        self._data["id"] = self._ids
        self._data["logit"] = logits
        self._data["p"] = 0.0
        cur = _candidates(self._data)
        if constrained:
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(cur))
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self._chain)
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)


_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


def _candidates(data: np.ndarray) -> llama_cpp.llama_token_data_array:
    return llama_cpp.llama_token_data_array(
        data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(data), selected=-1, sorted=False
    )


def grammar_for(response_type: str, schema: dict[str, object] | None) -> str | None:
    """The GBNF grammar that enforces an OpenAI response_format, or None for plain text."""
    if response_type == "json_object":
        return JSON_GBNF
    if response_type == "json_schema":
        return schema_to_gbnf(schema or {}, param="response_format")
    return None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class _StopMatcher:
    """Cuts the text at the first stop string, holding back only a tail that could start one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched: str | None = None

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        text = self._held + text
        hits = [(i, s) for s in self._stops if (i := text.find(s)) >= 0]
        if hits:
            cut, self.matched = min(hits)
            self._held = ""
            return text[:cut], True
        keep = max((_overlap(text, s) for s in self._stops), default=0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self, text: str) -> str:
        out, _ = self.feed(text)
        out, self._held = out + self._held, ""
        return out


def _overlap(text: str, stop: str) -> int:
    """The length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
