import asyncio
import time

import pytest

from seekgate.backends.fake import FakeBackend
from seekgate.core.types import ChatRequest, FinishReason, Message, Role, TextPart, ToolCall


def _request(*messages: Message) -> ChatRequest:
    return ChatRequest(model="m", messages=messages)


def _user(text: str) -> Message:
    return Message(role=Role.USER, content=(TextPart(text),))


def _called(name: str) -> Message:
    return Message(role=Role.ASSISTANT, tool_calls=(ToolCall("c", name, "{}"),))


def test_toolmess_answers_prose_then_a_bad_call_then_finish():
    fake = FakeBackend("f", "toolmess")
    first = asyncio.run(fake.chat(_request(_user("go"))))
    assert first.tool_calls == () and '"name": "list_files"' in first.text
    second = asyncio.run(fake.chat(_request(_user("go"), Message(role=Role.ASSISTANT, content=(TextPart(first.text),)))))
    assert [(c.name, c.arguments) for c in second.tool_calls] == [("read_file", '{"file": "README.md"}')]
    third = asyncio.run(fake.chat(_request(_user("go"), _called("x"), _called("y"))))
    assert third.tool_calls[0].name == "finish" and third.finish_reason == FinishReason.TOOL_CALLS


def test_toolbad_never_makes_a_call():
    fake = FakeBackend("f", "toolbad")
    for turns in range(4):
        answer = asyncio.run(fake.chat(_request(_user("go"), *[_called("x")] * turns)))
        assert answer.tool_calls == () and answer.text


def test_script_replays_the_calls_written_in_the_first_user_message():
    task = 'Task: do it\n@call read_file {"path": "a.py"}\n@say thinking\n@wait 50\n@call finish {"answer": "ok"}'
    fake = FakeBackend("f", "script")
    answers = [asyncio.run(fake.chat(_request(_user(task), *[_called("x")] * turn))) for turn in range(4)]
    assert [(c.name, c.arguments) for c in answers[0].tool_calls] == [("read_file", '{"path": "a.py"}')]
    assert answers[1].tool_calls == () and answers[1].text == "thinking"
    assert answers[2].tool_calls[0].arguments == '{"answer": "ok"}'
    assert answers[3].tool_calls[0].arguments == '{"answer": "script ended"}'


def test_script_waits_before_a_line_and_the_wait_can_be_cancelled():
    fake = FakeBackend("f", "script")
    request = _request(_user('@wait 5000\n@call finish {"answer": "late"}'))

    async def cancelled_soon() -> float:
        task = asyncio.ensure_future(fake.chat(request))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(cancelled_soon()) < 0.1


def test_scripted_calls_stream_as_tool_call_deltas():
    async def chunks() -> list:
        return [c async for c in FakeBackend("f", "script").stream(_request(_user('@call list_files {"path": "."}')))]

    first, last = asyncio.run(chunks())
    assert [(d.name, d.arguments) for d in first.tool_calls] == [("list_files", '{"path": "."}')]
    assert last.finish_reason == FinishReason.TOOL_CALLS
