"""AnswerCollector rebuilds a streamed answer; replay turns a cached answer back into a stream."""

from hypothesis import given
from hypothesis import strategies as st

from seekgate.cache import AnswerCollector, replay
from seekgate.core.types import ChatResponse, Chunk, FinishReason, ToolCall, ToolCallDelta, Usage

# Text, then two parallel tool calls whose deltas interleave, as OpenAI-compatible servers send them.
STREAM = [
    Chunk(text="Let me ", backend="gpu-1"),
    Chunk(text="read both files."),
    Chunk(tool_calls=(ToolCallDelta(index=0, id="call_a", name="read_file"),)),
    Chunk(tool_calls=(ToolCallDelta(index=0, arguments='{"pa'),)),
    Chunk(tool_calls=(ToolCallDelta(index=1, id="call_b", name="read_file", arguments='{"path": '),)),
    Chunk(tool_calls=(ToolCallDelta(index=0, arguments='th": "a.py"}'),)),
    Chunk(tool_calls=(ToolCallDelta(index=1, arguments='"b.py"}'),)),
    Chunk(finish_reason=FinishReason.TOOL_CALLS, usage=Usage(input_tokens=120, output_tokens=31)),
]
EXPECTED = ChatResponse(
    model="coder@1",
    text="Let me read both files.",
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=120, output_tokens=31),
    tool_calls=(
        ToolCall(id="call_a", name="read_file", arguments='{"path": "a.py"}'),
        ToolCall(id="call_b", name="read_file", arguments='{"path": "b.py"}'),
    ),
    backend="gpu-1",
)


def collect(chunks: list[Chunk], model: str = "coder@1") -> ChatResponse | None:
    collector = AnswerCollector()
    for chunk in chunks:
        collector.add(chunk)
    return collector.answer(model)


def test_a_streamed_answer_with_text_and_two_parallel_tool_calls_is_rebuilt():
    assert collect(STREAM) == EXPECTED


def test_tool_calls_come_out_in_index_order_whatever_order_they_started_in():
    swapped = [
        Chunk(tool_calls=(ToolCallDelta(index=1, id="b", name="g", arguments="{}"),)),
        Chunk(tool_calls=(ToolCallDelta(index=0, id="a", name="f", arguments="{}"),)),
        Chunk(finish_reason=FinishReason.TOOL_CALLS),
    ]
    answer = collect(swapped)
    assert answer is not None
    assert [c.id for c in answer.tool_calls] == ["a", "b"]


def test_a_stream_that_never_finished_has_no_answer():
    collector = AnswerCollector()
    for chunk in STREAM[:-1]:
        collector.add(chunk)
    assert not collector.finished
    assert collector.answer("coder@1") is None


def test_the_last_chunk_brings_stop_sequence_and_context_and_usage_defaults_to_zero():
    answer = collect(
        [
            Chunk(text="x = 1"),
            Chunk(finish_reason=FinishReason.STOP, stop_sequence="\n\n", context={"repo": "r@abc", "chunks": ["c1"]}),
        ]
    )
    assert answer == ChatResponse(
        model="coder@1",
        text="x = 1",
        finish_reason=FinishReason.STOP,
        usage=Usage(),
        stop_sequence="\n\n",
        context={"repo": "r@abc", "chunks": ["c1"]},
    )


def test_replay_then_collect_gives_back_the_same_answer():
    assert collect(replay(EXPECTED)) == EXPECTED
    with_stop = ChatResponse(
        model="m", text="a\n\n", finish_reason=FinishReason.STOP, usage=Usage(1, 2, 1), stop_sequence="END", context={"k": [1]}
    )
    assert collect(replay(with_stop), "m") == with_stop


def test_replay_streams_text_a_word_at_a_time_then_each_tool_call_then_the_end():
    chunks = replay(EXPECTED)
    assert [c.text for c in chunks if c.text] == ["Let", " me", " read", " both", " files."]
    assert chunks[0].backend == "gpu-1" and all(c.backend is None for c in chunks[1:])
    deltas = [d for c in chunks for d in c.tool_calls]
    firsts = {d.index: d for d in reversed(deltas)}
    assert {i: (d.id, d.name) for i, d in firsts.items()} == {0: ("call_a", "read_file"), 1: ("call_b", "read_file")}
    assert all(d.id is None and d.name is None for d in deltas if d not in firsts.values())
    assert [c.finish_reason for c in chunks] == [None] * (len(chunks) - 1) + [FinishReason.TOOL_CALLS]
    assert chunks[-1].usage == EXPECTED.usage and chunks[-1].usage is not EXPECTED.usage


def test_an_empty_answer_replays_as_one_final_chunk_naming_the_backend():
    empty = ChatResponse(model="m", text="", finish_reason=FinishReason.LENGTH, usage=Usage(5, 0), backend="b")
    assert replay(empty) == [Chunk(finish_reason=FinishReason.LENGTH, usage=Usage(5, 0), backend="b")]


@given(st.text(alphabet=st.sampled_from("ab \n\t\u00a0é"), max_size=60))
def test_replayed_text_joins_back_to_the_exact_text(text: str):
    answer = ChatResponse(model="m", text=text, finish_reason=FinishReason.STOP, usage=Usage())
    chunks = replay(answer)
    assert "".join(c.text for c in chunks) == text
    assert all(c.text for c in chunks[:-1])
    assert collect(chunks, "m") == answer
