"""`seekgate pull` end to end: the real CLI and the real huggingface_hub client against a fake hub
on loopback that speaks the hub's wire protocol; then the pulled weights serve a chat completion."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fixtures.fake_hub import FakeHub, fake_hub
from tests.fixtures.servers import run_gateway

REPO = "seekgate-tests/tiny-deepseek2-GGUF"
FILE = "tiny-deepseek2.gguf"
NESTED = "Q8_0/tiny-deepseek2-Q8_0.gguf"  # many GGUF repos keep each quantisation in a folder

CONFIG = f"""
[server]
default_model = "tiny-pulled"

[models.tiny-pulled]
backend = "embedded"
hf_repo = "{REPO}"
hf_file = "{FILE}"

[models.tiny-nested]
backend = "embedded"
hf_repo = "{REPO}"
hf_file = "{NESTED}"

[models.no-such-repo]
backend = "embedded"
hf_repo = "nobody/no-such-GGUF"
hf_file = "{FILE}"

[models.no-such-file]
backend = "embedded"
hf_repo = "{REPO}"
hf_file = "no-such-file.gguf"

[models.smol-pulled]
backend = "embedded"
hf_repo = "seekgate-tests/SmolLM2-GGUF"
hf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""


@pytest.fixture(scope="module")
def tiny_gguf(tiny_deepseek2: Path) -> bytes:
    return tiny_deepseek2.read_bytes()


@pytest.fixture
def hub(tiny_gguf: bytes) -> Iterator[FakeHub]:
    with fake_hub({(REPO, FILE): tiny_gguf, (REPO, NESTED): tiny_gguf}) as server:
        yield server


def _env(home: Path, hub: FakeHub) -> dict[str, str]:
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(home / "hf"),  # never the user's own hub cache or token
        "SEEKGATE_SERVER__DATA_DIR": str(home / "data"),
    }


def _seekgate(home: Path, hub: FakeHub, *args: str) -> subprocess.CompletedProcess[str]:
    config = home / "seekgate.toml"
    config.write_text(CONFIG)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    cmd = [sys.executable, "-m", "seekgate.cli.main", "--config", str(config), *args]
    return subprocess.run(cmd, env=inherited | _env(home, hub), capture_output=True, text=True, timeout=300)


def _target(home: Path, repo: str, file: str) -> Path:
    return home / "data" / "models" / repo.replace("/", "--") / file


def _models(home: Path, hub: FakeHub) -> dict[str, dict]:
    listed = _seekgate(home, hub, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    return {row["alias"]: row for row in map(json.loads, listed.stdout.splitlines())}


def test_pull_downloads_the_weights_byte_identical_and_models_reports_them(tmp_path: Path, hub: FakeHub, tiny_gguf: bytes):
    target = _target(tmp_path, REPO, FILE)
    assert _models(tmp_path, hub)["tiny-pulled"]["weights"] == "missing"
    pulled = _seekgate(tmp_path, hub, "pull", "tiny-pulled")
    assert pulled.returncode == 0, pulled.stderr
    assert target.read_bytes() == tiny_gguf
    assert f"saved {target}" in pulled.stdout
    assert [(r.server, r.method) for r in hub.requests] == [("hub", "HEAD"), ("cdn", "GET")]
    row = _models(tmp_path, hub)["tiny-pulled"]
    assert row["weights"] == "present" and row["path"] == str(target)


def test_a_second_pull_finds_the_weights_and_asks_the_hub_nothing(tmp_path: Path, hub: FakeHub):
    assert _seekgate(tmp_path, hub, "pull", "tiny-pulled").returncode == 0
    hub.requests.clear()
    again = _seekgate(tmp_path, hub, "pull", "tiny-pulled")
    assert again.returncode == 0, again.stderr
    assert f"already present at {_target(tmp_path, REPO, FILE)}" in again.stdout
    assert hub.requests == []


def test_a_file_in_a_repo_folder_lands_where_models_and_serve_look(tmp_path: Path, hub: FakeHub, tiny_gguf: bytes):
    pulled = _seekgate(tmp_path, hub, "pull", "tiny-nested")
    assert pulled.returncode == 0, pulled.stderr
    target = _target(tmp_path, REPO, NESTED)
    assert target.read_bytes() == tiny_gguf
    assert _models(tmp_path, hub)["tiny-nested"]["path"] == str(target)
    hub.requests.clear()
    assert "already present" in _seekgate(tmp_path, hub, "pull", "tiny-nested").stdout
    assert hub.requests == []


@pytest.mark.parametrize(
    ("alias", "repo", "file", "problem"),
    [
        ("no-such-repo", "nobody/no-such-GGUF", FILE, "RepositoryNotFoundError"),
        ("no-such-file", REPO, "no-such-file.gguf", "RemoteEntryNotFoundError"),
    ],
)
def test_pulling_what_the_hub_lacks_fails_clearly_and_leaves_nothing(tmp_path: Path, hub: FakeHub, alias: str, repo: str, file: str, problem: str):
    failed = _seekgate(tmp_path, hub, "pull", alias)
    assert failed.returncode == 1
    assert f"seekgate: download failed: {problem}" in failed.stderr
    assert f"{repo}/resolve/main/{file}" in failed.stderr  # the message names what was asked for
    models = tmp_path / "data" / "models"
    assert not _target(tmp_path, repo, file).exists()
    # huggingface_hub leaves only its lock files under .cache/huggingface; no weights, no partial download.
    assert [p for p in models.rglob("*") if p.is_file() and ".cache" not in p.relative_to(models).parts] == []
    assert _models(tmp_path, hub)[alias]["weights"] == "missing"


def test_a_dropped_connection_resumes_with_a_range_request(tmp_path: Path, smollm2_path: Path):
    weights = smollm2_path.read_bytes()
    # huggingface_hub writes in 10 MiB chunks, so a drop after 25 MB resumes from 20 MiB.
    with fake_hub({("seekgate-tests/SmolLM2-GGUF", smollm2_path.name): weights}, drop_after=25_000_000, drops=1) as flaky:
        pulled = _seekgate(tmp_path, flaky, "pull", "smol-pulled")
        assert pulled.returncode == 0, pulled.stderr
        assert [r.range for r in flaky.requests if r.server == "cdn"] == [None, f"bytes={20 * 1024 * 1024}-"]
    assert _target(tmp_path, "seekgate-tests/SmolLM2-GGUF", smollm2_path.name).read_bytes() == weights


def test_the_pulled_model_serves_chat_completions(tmp_path: Path, hub: FakeHub):
    assert _seekgate(tmp_path, hub, "pull", "tiny-pulled").returncode == 0
    hub.requests.clear()
    with run_gateway(CONFIG, tmp_path, env=_env(tmp_path, hub)) as gateway:
        client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
        resp = client.chat.completions.create(model="tiny-pulled", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0)
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert hub.requests == []  # serving reads the pulled file; it never asks the hub
