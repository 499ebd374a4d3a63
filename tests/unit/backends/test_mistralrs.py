"""The mistral.rs backend on the real bundled SmolLM2 GGUF, offline, and its refusals."""

import asyncio
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.backends.base import Backend
from seekgate.backends.mistralrs import MistralrsBackend, gguf_architecture
from seekgate.core.types import ChatRequest, CompletionRequest, FinishReason, ImagePart, Message, Role, Sampling, TextPart
from seekgate.settings import MistralrsBackendSpec, ModelSpec
from tests.fixtures.tiny_deepseek2 import write_tiny_deepseek2_gguf

GREEDY = Sampling(max_tokens=8, temperature=0)


def _backend(weights: Path | None, queue: int = 8) -> MistralrsBackend:
    model = ModelSpec(backend="mrs", path=str(weights) if weights else "missing.gguf")
    return MistralrsBackend("mrs", "smol", MistralrsBackendSpec(queue=queue), model, weights)


def _chat(text: str, sampling: Sampling = GREEDY) -> ChatRequest:
    return ChatRequest(model="smol", messages=(Message(Role.USER, (TextPart(text),)),), sampling=sampling)


def test_it_speaks_the_backend_protocol(smollm2_path):
    assert isinstance(_backend(smollm2_path), Backend)


def test_chat_answers_with_text_and_usage(smollm2_path):
    async def main():
        backend = _backend(smollm2_path)
        await backend.start()
        try:
            first = await backend.chat(_chat("Name three colours."))
            again = await backend.chat(_chat("Name three colours."))
            health = await backend.health()
        finally:
            await backend.aclose()
        return first, again, health, backend.capabilities

    first, again, health, caps = asyncio.run(main())
    assert first.text.strip() and first.text == again.text  # greedy is repeatable
    assert first.finish_reason is FinishReason.LENGTH
    assert first.usage.output_tokens == 8 and first.usage.input_tokens > 5
    assert health.ready and health.load["finished"] == 2
    assert caps.context_tokens == 8192 and not caps.fim


def test_stream_yields_chunks_then_a_final_chunk(smollm2_path):
    async def main():
        backend = _backend(smollm2_path)
        try:
            chat = [c async for c in backend.stream(_chat("Count from one to ten.", Sampling(max_tokens=6, temperature=0)))]
            completion = [c async for c in backend.stream(CompletionRequest(model="smol", prompt="def add(a, b):", sampling=GREEDY))]
        finally:
            await backend.aclose()
        return chat, completion

    chat, completion = asyncio.run(main())
    *pieces, last = chat
    assert len(pieces) >= 3 and all(p.text and p.finish_reason is None for p in pieces)
    assert last.text == "" and last.finish_reason is FinishReason.LENGTH
    assert last.usage is not None and last.usage.output_tokens == 6
    *body, end = completion
    assert "".join(c.text for c in body).strip() and end.usage is not None and end.usage.output_tokens == 8


def test_stop_sequences_end_the_answer(smollm2_path):
    async def main():
        backend = _backend(smollm2_path)
        try:
            return await backend.chat(_chat("Count: 1, 2, 3, 4, 5, 6, 7, 8", Sampling(max_tokens=40, temperature=0, stop=(",",))))
        finally:
            await backend.aclose()

    answer = asyncio.run(main())
    assert "," not in answer.text and answer.finish_reason is FinishReason.STOP


def test_a_deepseek2_gguf_is_refused_before_loading(tmp_path):
    path = write_tiny_deepseek2_gguf(tmp_path / "tiny-deepseek2.gguf")
    assert gguf_architecture(path) == "deepseek2"

    async def main():
        backend = _backend(path)
        with pytest.raises(errors.ModelNotReady) as refused:
            await backend.start()
        with pytest.raises(errors.ModelNotReady):  # every request gets the same answer
            await backend.chat(_chat("hi"))
        health = await backend.health()
        await backend.aclose()
        return refused.value, health

    refusal, health = asyncio.run(main())
    assert refusal.code == "unsupported_architecture"
    for words in ("'deepseek2'", "shape mismatch", "first forward pass", 'type = "llamacpp"', 'type = "openai"', "mistralrs-server"):
        assert words in refusal.message
    assert not health.ready and "deepseek2" in health.detail


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(errors.ModelNotReady, match="not a GGUF file"):
        gguf_architecture(path)


def test_the_bundled_model_header_reads_as_llama(smollm2_path):
    assert gguf_architecture(smollm2_path) == "llama"


def test_missing_weights_is_not_ready_and_says_to_pull():
    async def main():
        backend = _backend(None)
        health = await backend.health()
        with pytest.raises(errors.ModelNotReady, match="seekgate pull smol"):
            await backend.chat(_chat("hi"))
        await backend.aclose()
        return health

    health = asyncio.run(main())
    assert not health.ready and "seekgate pull smol" in health.detail


def test_what_this_engine_cannot_do_is_refused_up_front(smollm2_path):
    backend = _backend(smollm2_path)
    image = ChatRequest(model="smol", messages=(Message(Role.USER, (ImagePart("data:image/png;base64,AA=="),)),))
    fim = CompletionRequest(model="smol", prompt="def f(", suffix="\n    return x")
    seeded = _chat("hi", Sampling(temperature=0.8, seed=1))

    async def main():
        for request, param in ((image, "messages"), (fim, "suffix"), (seeded, "seed")):
            with pytest.raises(errors.Unsupported) as refused:
                await backend.chat(request)
            assert refused.value.param == param
        await backend.aclose()

    asyncio.run(main())


def test_a_cancelled_chat_stops_generating_and_frees_the_engine(smollm2_path):
    async def main():
        backend = _backend(smollm2_path)
        await backend.start()
        try:
            long = asyncio.create_task(backend.chat(_chat("Write a long story about the sea.", Sampling(max_tokens=2000, temperature=0))))
            while (await backend.health()).load["running"] == 0:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            long.cancel()
            with pytest.raises(asyncio.CancelledError):
                await long
            started = asyncio.get_running_loop().time()
            answer = await backend.chat(_chat("Say hi."))
            return answer, asyncio.get_running_loop().time() - started, await backend.health()
        finally:
            await backend.aclose()

    answer, waited, health = asyncio.run(main())
    assert answer.text and health.load["cancelled"] == 1 and health.load["finished"] == 1
    assert waited < 60  # 2000 tokens would take minutes; the cancelled one stopped at once


def test_requests_queue_one_at_a_time_and_overflow_is_overloaded(smollm2_path):
    async def main():
        backend = _backend(smollm2_path, queue=1)
        await backend.start()
        try:
            first = backend.stream(_chat("Write a long story about the sea.", Sampling(max_tokens=400, temperature=0)))
            assert (await anext(first)).text  # the first request is generating
            second = asyncio.create_task(backend.chat(_chat("Say hi.")))
            await asyncio.sleep(0.2)
            busy = await backend.health()
            with pytest.raises(errors.Overloaded) as third:
                await backend.chat(_chat("Say hello."))
            assert not second.done()
            await first.aclose()  # the caller of the first request leaves
            answer = await asyncio.wait_for(second, 60)
            after = await backend.health()
        finally:
            await backend.aclose()
        return busy, third.value, answer, after

    busy, overloaded, answer, after = asyncio.run(main())
    assert busy.load["running"] == 1 and busy.load["waiting"] == 1
    assert overloaded.headers["Retry-After"] == "1" and overloaded.status == 503
    assert answer.text and answer.finish_reason is FinishReason.LENGTH
    assert after.load == {"running": 0, "waiting": 0, "finished": 1, "cancelled": 1}
