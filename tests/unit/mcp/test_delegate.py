"""The scalpel loop against a scripted model (every turn a ChatResponse the test chose), a real
workspace in tmp_path, an OpenAI-compatible server on loopback, and the real embedded SmolLM2."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from seekgate import errors
from seekgate.backends.registry import Registry
from seekgate.core.service import Gateway, Hints
from seekgate.core.types import ChatRequest, ChatResponse, FinishReason, Role, ToolCall, Usage
from seekgate.mcp.chat import endpoint_chat, gateway_chat
from seekgate.mcp.delegate import ChoreResult, run_chore
from seekgate.mcp.toolkit import check_arguments, tools_for
from seekgate.mcp.workspace import Workspace
from seekgate.prompts.packs import PackStore, shipped_packs_dir
from seekgate.reviews.store import ReviewStore
from seekgate.settings import load_settings
from seekgate.telemetry.record import RequestRecord, Telemetry

Turn = ChatResponse | Callable[[ChatRequest], Awaitable[ChatResponse]]


def call(name: str, _id: str = "", **arguments: Any) -> ChatResponse:
    return raw_call(name, json.dumps(arguments), _id)


def raw_call(name: str, arguments: str, _id: str = "") -> ChatResponse:
    tool_call = ToolCall(_id or f"call_{name}_{len(arguments)}", name, arguments)
    return ChatResponse(model="m", text="", finish_reason=FinishReason.TOOL_CALLS, usage=Usage(), tool_calls=(tool_call,))


def prose(text: str) -> ChatResponse:
    return ChatResponse(model="m", text=text, finish_reason=FinishReason.STOP, usage=Usage())


class Scripted:
    """A Chat that answers each turn from a script and keeps every request it was sent."""

    def __init__(self, *turns: Turn) -> None:
        self.turns = list(turns)
        self.requests: list[ChatRequest] = []

    async def __call__(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        turn = self.turns.pop(0)
        return turn if isinstance(turn, ChatResponse) else await turn(request)

    def tool_results(self, index: int) -> list[str]:
        """The tool and feedback messages the model had seen by request `index`."""
        return [m.text for m in self.requests[index].messages if m.role in (Role.TOOL, Role.USER)][1:]

    def check_every_request(self) -> None:
        assert self.requests
        for request in self.requests:
            assert request.tool_choice.mode == "required" and request.parallel_tool_calls is False


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (tmp_path / "README.md").write_text("# calc\nAdds numbers.\n")
    return tmp_path


def chore(chat: Scripted, ws: Workspace, task: str = "What does add do?", **kwargs: Any) -> ChoreResult:
    kwargs.setdefault("mode", "intel")
    kwargs.setdefault("deadline_s", 30)
    return asyncio.run(run_chore(chat, ws, task, **kwargs))


def test_intel_chore_reads_files_and_finishes_with_the_answer(project: Path):
    chat = Scripted(
        call("list_files", path="src"),
        call("read_file", path="src/calc.py"),
        call("search", regex="return", glob="*.py"),
        call("finish", answer="add subtracts: a bug"),
    )
    notes: list[tuple[int, str]] = []
    result = chore(chat, Workspace(project, writable=False), progress=lambda step, note: notes.append((step, note)))
    assert result.ok and result.error is None
    assert result.answer == "add subtracts: a bug"
    assert (result.steps, result.tool_calls, result.invalid_calls) == (4, 4, 0)
    seen = chat.tool_results(3)
    assert seen[0] == "src/calc.py"
    assert "return a - b" in seen[1]
    assert seen[2] == "src/calc.py:2:     return a - b"
    assert [step for step, _ in notes] == [1, 2, 3, 4] and notes[1][1] == "read_file src/calc.py"
    chat.check_every_request()


def test_listed_paths_are_in_the_first_message(project: Path):
    chat = Scripted(call("finish", answer="ok"))
    chore(chat, Workspace(project, writable=False), paths=["src/calc.py", "missing.py"], context="the tests fail")
    first = chat.requests[0].messages[1].text
    assert "Task: What does add do?" in first and "the tests fail" in first
    assert "--- src/calc.py ---\ndef add(a, b):" in first
    assert "missing.py: cannot be read" in first


def test_intel_mode_hands_the_model_no_write_tool_and_refuses_apply_patch(project: Path):
    patch = "src/calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
    chat = Scripted(call("apply_patch", patch=patch), call("finish", answer="cannot edit"))
    result = chore(chat, Workspace(project, writable=False))
    for request in chat.requests:
        assert [t.name for t in request.tools] == ["read_file", "list_files", "search", "finish"]
    assert "unknown tool 'apply_patch' (this chore is read-only)" in chat.tool_results(1)[0]
    assert result.ok and result.invalid_calls == 1 and result.changed == []
    assert (project / "src" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert "apply_patch" not in " ".join(m.text for m in chat.requests[0].messages[:1])


def test_edit_chore_applies_a_patch_and_reports_the_diff(project: Path):
    patch = "src/calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
    chat = Scripted(call("read_file", path="src/calc.py"), call("apply_patch", patch=patch), call("finish", answer="fixed add"))
    result = chore(chat, Workspace(project, writable=True), task="Fix add", mode="edit")
    assert result.ok, result.error
    assert (project / "src" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert [d.path for d in result.changed] == ["src/calc.py"] and "+    return a + b" in result.changed[0].diff
    assert "apply_patch" in [t.name for t in chat.requests[0].tools]
    assert chat.tool_results(2)[1].startswith("Applied. Changed: src/calc.py")
    assert result.to_dict()["changed"][0]["path"] == "src/calc.py"
    chat.check_every_request()


def test_edit_chore_that_changes_nothing_fails(project: Path):
    bad = "src/calc.py\n<<<<<<< SEARCH\n    return a * b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
    chat = Scripted(call("apply_patch", patch=bad), call("finish", answer="done"), call("finish", answer="done"))
    result = chore(chat, Workspace(project, writable=True), task="Fix add", mode="edit")
    assert not result.ok and result.error is not None and result.error.startswith("no file changed")
    assert result.answer == "done" and result.changed == []
    seen = chat.tool_results(2)
    assert seen[0].startswith("Error: the patch was not applied, nothing changed")
    assert seen[1].startswith("Error: no file changed yet")
    assert (project / "src" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"


def test_edit_mode_needs_a_writable_workspace(project: Path):
    with pytest.raises(errors.InvalidRequest, match="writable"):
        chore(Scripted(), Workspace(project, writable=False), mode="edit")
    with pytest.raises(errors.InvalidRequest, match="unknown mode"):
        chore(Scripted(), Workspace(project, writable=False), mode="write")


def test_invalid_calls_get_a_precise_error_and_the_chore_recovers(project: Path):
    chat = Scripted(
        prose('Sure! {"name": "read_file", "arguments": {"path": "src/calc.py"}}'),
        call("read_file", file="src/calc.py"),
        call("read_file", path="src/calc.py"),
        raw_call("search", '{"regex": '),
        call("read_file", path="src/calc.py", start_line="two"),
        call("list_files"),
        call("rm", path="x"),
        call("finish", answer="done"),
    )
    result = chore(chat, Workspace(project, writable=False))
    assert result.ok and result.invalid_calls == 5 and result.tool_calls == 3 and result.steps == 8
    seen = chat.tool_results(7)
    assert seen[0].startswith("Error: you answered in prose; every turn must be exactly one tool call")
    assert seen[1] == "Error: read_file has no argument 'file'; it is called as read_file(path, start_line?, end_line?)"
    assert "return a - b" in seen[2]
    assert seen[3].startswith("Error: the arguments of search are not valid JSON")
    assert seen[4] == "Error: read_file: start_line must be an integer, not a string"
    assert seen[6] == "Error: unknown tool 'rm'; the tools are: read_file, list_files, search, finish"
    # the bad JSON is not sent back as a call (servers parse the calls in the history)
    assert [m.tool_calls[0].arguments for m in chat.requests[4].messages if m.tool_calls][-1] == "{}"
    # the prose stays in the conversation, so the model sees what it did wrong
    assert chat.requests[1].messages[2].role is Role.ASSISTANT and chat.requests[1].messages[2].text.startswith("Sure!")


def test_three_invalid_calls_in_a_row_end_the_chore_cleanly(project: Path):
    cut = ChatResponse(model="m", text='{"name": "read_file", "argu', finish_reason=FinishReason.LENGTH, usage=Usage())
    chat = Scripted(call("list_files"), prose("hello"), cut, call("finish"), call("finish", answer="never reached"))
    result = chore(chat, Workspace(project, writable=False), max_tokens=64)
    assert not result.ok and result.steps == 4 and result.invalid_calls == 3
    assert (
        result.error
        == "the model made 3 invalid tool calls in a row; the last: finish needs the argument 'answer'; it is called as finish(answer)"
    )
    assert "cut at max_tokens (64)" in chat.tool_results(3)[-1]
    assert "list_files" in result.answer  # what was done before it stopped
    assert len(chat.turns) == 1


def test_json_format_asks_for_a_json_answer(project: Path):
    chat = Scripted(call("finish", answer="add subtracts"), call("finish", answer='{"bug": "add subtracts"}'))
    result = chore(chat, Workspace(project, writable=False), fmt="json")
    assert result.ok and json.loads(result.answer) == {"bug": "add subtracts"} and result.invalid_calls == 1
    assert chat.tool_results(1)[0].startswith("Error: finish: the answer must be JSON text (format json)")
    assert "JSON text" in chat.requests[0].messages[0].text


def test_step_limit_ends_the_chore_with_what_was_learned(project: Path):
    chat = Scripted(call("read_file", path="README.md"), call("read_file", path="src/calc.py"))
    result = chore(chat, Workspace(project, writable=False), max_steps=2)
    assert not result.ok and result.steps == 2
    assert result.error == "step limit: 2 model turns ran out before the model called finish"
    assert "1. read_file README.md" in result.answer and "return a - b" in result.answer


def test_time_budget_stops_a_slow_model(project: Path):
    async def slow(request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    chat = Scripted(call("read_file", path="README.md"), slow)
    started = time.monotonic()
    result = chore(chat, Workspace(project, writable=False), deadline_s=0.5)
    assert time.monotonic() - started < 10  # the 0.5 s budget ended it, not the slow model
    assert not result.ok and result.error is not None and result.error.startswith("time budget: 0.5s ran out at step 2")
    assert "read_file README.md" in result.answer


def test_a_failing_model_call_ends_the_chore_with_the_error(project: Path):
    async def down(request: ChatRequest) -> ChatResponse:
        raise errors.UpstreamUnavailable("backend x is unavailable")

    result = chore(Scripted(down), Workspace(project, writable=False))
    assert not result.ok and result.error == "the model call at step 1 failed: backend x is unavailable"


def test_long_results_are_cut_and_old_ones_elided(project: Path):
    (project / "big.txt").write_text("".join(f"line {i:05d} of a long file\n" for i in range(1000)))
    chat = Scripted(
        call("read_file", path="big.txt"),
        call("read_file", path="big.txt", start_line=1, end_line=2),
        call("read_file", path="README.md"),
        call("finish", answer="ok"),
    )
    chore(chat, Workspace(project, writable=False), result_chars=3000, history_chars=3000)
    first = chat.tool_results(1)[0]
    assert len(first) < 3200 and "more characters; read a narrower range with start_line and end_line]" in first
    later = chat.tool_results(3)
    assert later[0].startswith("[earlier result elided")
    assert later[1] == "big.txt lines 1-2:\nline 00000 of a long file\nline 00001 of a long file\n"


def test_cancel_mid_loop_stops_within_a_second(project: Path):
    reached = asyncio.Event()
    stopped: list[bool] = []

    async def hang(request: ChatRequest) -> ChatResponse:
        reached.set()
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.append(True)
        raise AssertionError("not reached")

    async def main() -> None:
        chat = Scripted(call("read_file", path="src/calc.py"), hang)
        task = asyncio.create_task(run_chore(chat, Workspace(project, writable=True), "Fix add", mode="edit", deadline_s=60))
        await reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # the model call hangs: only the cancel ends it
            await asyncio.wait_for(task, 10.0)
        assert stopped == [True]

    asyncio.run(main())
    assert (project / "src" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"


def test_cancel_during_an_edit_rolls_the_edit_back(project: Path):
    target = project / "src" / "calc.py"
    patch = "src/calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"

    async def main() -> None:
        chat = Scripted(call("apply_patch", patch=patch), call("finish", answer="never"))
        task = asyncio.create_task(
            run_chore(chat, Workspace(project, writable=True), "Fix add", mode="edit", verify="sleep 30", deadline_s=60)
        )
        while "a + b" not in target.read_text():  # written; the verify command is running
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # without waiting for the 30 s verify command
            await asyncio.wait_for(task, 15.0)

    asyncio.run(main())
    assert target.read_text() == "def add(a, b):\n    return a - b\n"


def test_only_what_the_grammar_enforces_is_checked():
    """A call the engine's grammar admits always passes the loop's own check."""
    for spec in tools_for("edit"):
        schema = spec.parameters
        assert schema["additionalProperties"] is False
        for rule in schema["properties"].values():
            assert set(rule) <= {"type", "maxLength", "minLength"}
    read = tools_for("intel")[0]
    assert check_arguments(read, '{"path": "a", "start_line": 0}') == {"path": "a", "start_line": 0}


def test_the_answer_and_the_patch_may_not_be_empty():
    tools = {t.name: t for t in tools_for("edit")}
    assert tools["finish"].parameters["properties"]["answer"] == {"type": "string", "minLength": 1}
    assert tools["apply_patch"].parameters["properties"]["patch"] == {"type": "string", "minLength": 1}
    assert check_arguments(tools["finish"], '{"answer": "done"}') == {"answer": "done"}
    with pytest.raises(Exception, match="answer is empty"):
        check_arguments(tools["finish"], '{"answer": ""}')


class FakeGateway:
    def __init__(self, tasks: dict[str, Any]) -> None:
        self.settings = SimpleNamespace(tasks=tasks, routing=SimpleNamespace(default_task="chat"))
        self.seen: list[tuple[ChatRequest, Hints]] = []

    async def chat(self, request: ChatRequest, hints: Hints) -> tuple[object, ChatResponse]:
        self.seen.append((request, hints))
        return object(), call("finish", answer="from the gateway")


def test_gateway_chat_goes_through_the_gateway_with_the_scalpel_task_when_configured(project: Path):
    for tasks, expected in (({"chat": 1}, "chat"), ({"chat": 1, "scalpel": 2}, "scalpel")):
        gateway = FakeGateway(tasks)
        chat = gateway_chat(gateway, model="smollm2-135m", api_key="sgk_x")  # type: ignore[arg-type]
        result = asyncio.run(run_chore(chat, Workspace(project, writable=False), "q", mode="intel"))
        assert result.ok and result.answer == "from the gateway"
        ((request, hints),) = gateway.seen
        assert request.model == "smollm2-135m" and request.tool_choice.mode == "required"
        assert (hints.task, hints.pack, hints.api_key) == (expected, "none", "sgk_x")


def test_gateway_chat_meters_each_model_turn_as_a_request_to_mcp(project: Path):
    records: list[RequestRecord] = []
    telemetry = Telemetry([SimpleNamespace(observe=records.append)])  # type: ignore[list-item]
    gateway = FakeGateway({"chat": 1})
    chat = gateway_chat(gateway, telemetry=telemetry)  # type: ignore[arg-type]
    assert asyncio.run(run_chore(chat, Workspace(project, writable=False), "q", mode="intel")).ok

    async def refused(request: ChatRequest, hints: Hints) -> tuple[object, ChatResponse]:
        raise errors.RateLimited("slow down", code="rate_limited")

    gateway.chat = refused  # type: ignore[method-assign]
    failed = asyncio.run(run_chore(chat, Workspace(project, writable=False), "q", mode="intel"))
    assert not failed.ok and failed.error == "the model call at step 1 failed: slow down"
    assert [(r.endpoint, r.status, r.error) for r in records] == [("/mcp", 200, None), ("/mcp", 429, "rate_limited")]
    assert gateway.seen[0][1].trace is not None


def test_endpoint_chat_speaks_openai_tool_calls(project: Path):
    bodies: list[dict[str, Any]] = []
    answers = [
        {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "README.md"}'}},
        {"id": "c2", "type": "function", "function": {"name": "finish", "arguments": '{"answer": "it adds"}'}},
    ]

    async def completions(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer k"
        bodies.append(await request.json())
        message = {"role": "assistant", "content": None, "tool_calls": [answers[len(bodies) - 1]]}
        return web.json_response(
            {"choices": [{"message": message, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 5}}
        )

    async def main() -> ChoreResult:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        chat = endpoint_chat(f"http://127.0.0.1:{port}/v1/chat/completions", "coder", api_key="k", timeout_s=10)
        try:
            return await run_chore(chat, Workspace(project, writable=False), "What is this?", mode="intel")
        finally:
            await chat.aclose()
            await runner.cleanup()

    result = asyncio.run(main())
    assert result.ok and result.answer == "it adds"
    first, second = bodies
    assert first["model"] == "coder" and first["tool_choice"] == "required" and first["parallel_tool_calls"] is False
    assert [t["function"]["name"] for t in first["tools"]] == ["read_file", "list_files", "search", "finish"]
    assert second["messages"][-2]["tool_calls"][0]["id"] == "c1"
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["tool_call_id"] == "c1"
    assert "# calc" in second["messages"][-1]["content"]


@pytest.mark.engine
def test_real_small_model_runs_an_intel_chore_with_valid_calls_only(
    project: Path, tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path
):
    data = tmp_path_factory.mktemp("data")
    overrides = {"server.data_dir": str(data), "server.preload_default": False, "cache.enabled": False}
    settings = load_settings(env={}, overrides={**overrides, "models.smollm2-135m.path": str(smollm2_path)})
    requests: list[ChatRequest] = []
    responses: list[ChatResponse] = []

    async def main() -> ChoreResult:
        registry = Registry(settings)
        registry.build()
        reviews = ReviewStore(data / "seekgate.db")
        gateway = Gateway(registry, settings, PackStore([shipped_packs_dir()]), reviews)
        through = gateway_chat(gateway, model="smollm2-135m")

        async def recorded(request: ChatRequest) -> ChatResponse:
            requests.append(request)
            response = await through(request)
            responses.append(response)
            return response

        try:
            return await run_chore(
                recorded, Workspace(project, writable=False), "List the Python files in this project.",
                mode="intel", max_steps=3, max_tokens=96, deadline_s=240,
            )  # fmt: skip
        finally:
            await registry.aclose()
            reviews.close()

    result = asyncio.run(main())
    # It ended by itself: finished, or stopped cleanly at the step limit (or, on a very slow
    # machine, the time budget); the 135M model's answer itself is not judged.
    assert result.ok or (result.error or "").startswith(("step limit: 3 model turns ran out", "time budget: 240s ran out"))
    assert 1 <= len(responses) <= result.steps <= 3
    assert all(r.tool_choice.mode == "required" and not r.parallel_tool_calls for r in requests)
    tools = {t.name: t for t in tools_for("intel")}
    for response in responses:
        (one,) = response.tool_calls  # constrained decoding: exactly one call, never prose
        assert response.finish_reason is FinishReason.TOOL_CALLS
        check_arguments(tools[one.name], one.arguments)  # raises on a call the loop would refuse
    assert result.invalid_calls == 0 and result.tool_calls == len(responses) >= 1
