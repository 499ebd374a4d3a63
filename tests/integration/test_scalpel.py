"""scalpel over MCP, driven with the official `mcp` client SDK over stdio (`seekgate mcp`) and
over streamable HTTP (`seekgate serve`, /mcp), on a copy of tests/fixtures/scalpel_repo.

The fake backend's `script` model replays the tool calls written in the task (`@call NAME
{...}`), so each chore takes a known path through the real loop, workspace, patches, verify
command and jobs; `toolmess` and `toolbad` emit malformed calls; the bundled SmolLM2 runs one
intel chore end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.fixtures.servers import Process, run_gateway

FIXTURE = Path(__file__).parents[1] / "fixtures" / "scalpel_repo"
TRANSPORTS = ("stdio", "http")

CONFIG = """
[server]
preload_default = false

[telemetry]
log_format = "text"

[models.fake-script]
backend = "fake"
upstream_model = "script"

[models.fake-toolmess]
backend = "fake"
upstream_model = "toolmess"

[models.fake-toolbad]
backend = "fake"
upstream_model = "toolbad"

[scalpel]
workspace = "{repo}"
model = "fake-script"
verify = "{python} checks.py"
timeout_ms = 60000
max_steps = 6
{extra}
"""


def _config(folder: Path, repo: Path, extra: str = "") -> Path:
    path = folder / "scalpel.toml"
    path.write_text(CONFIG.format(repo=repo, python=sys.executable, extra=extra))
    return path


def _reset(repo: Path) -> None:
    """The fixture's files, exactly, in `repo` (which a running server keeps as its root)."""
    repo.mkdir(parents=True, exist_ok=True)
    for child in repo.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.copytree(FIXTURE, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


def _snapshot(repo: Path) -> dict[str, bytes]:
    files = (p for p in sorted(repo.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)
    return {str(p.relative_to(repo)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scalpel")
    _reset(folder / "repo")
    _config(folder, folder / "repo")
    return folder


@pytest.fixture(scope="module")
def gateway(site: Path) -> Iterator[Process]:
    with run_gateway((site / "scalpel.toml").read_text(), site) as server:
        yield server


@pytest.fixture
def repo(site: Path) -> Path:
    _reset(site / "repo")
    return site / "repo"


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def stdio_session(
    config: Path, data_dir: Path, *args: str, before: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """`seekgate [before...] --config CONFIG mcp [args...]`, connected and initialized."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "seekgate.cli.main", *before, "--config", str(config), "mcp", *args],
        env={"SEEKGATE_SERVER__DATA_DIR": str(data_dir), **(env or {})},
    )
    with (config.parent / "mcp-stderr.log").open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as client,
        streamable_http_client(url + "/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def connect(transport: str, site: Path, request: pytest.FixtureRequest) -> contextlib.AbstractAsyncContextManager[ClientSession]:
    if transport == "stdio":
        return stdio_session(site / "scalpel.toml", site / "stdio-data")
    return http_session(request.getfixturevalue("gateway").base_url)


async def call(session: ClientSession, tool: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A tool's JSON result; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments, **kwargs)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content == json.loads(text)
    return json.loads(text)


async def refused(session: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    """A tool error's message; fails the test when the call is not refused."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.content
    return str(result.content[0].text)  # type: ignore[union-attr]


def script(*lines: str) -> str:
    return "\n".join(("Do the chore.", *lines))


def call_line(name: str, **arguments: Any) -> str:
    return f"@call {name} {json.dumps(arguments)}"


RAISE_LOW_STOCK = "shelf/items.py\n<<<<<<< SEARCH\nLOW_STOCK = 3\n=======\nLOW_STOCK = 5\n>>>>>>> REPLACE\n"


def test_the_server_offers_three_tools_with_schemas(transport: str, site: Path, request: pytest.FixtureRequest):
    async def scenario() -> None:
        async with connect(transport, site, request) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == {"scalpel", "scalpel_status", "scalpel_cancel"}
            schema = tools["scalpel"].input_schema
            assert schema["required"] == ["task", "mode"]
            assert schema["properties"]["mode"]["enum"] == ["intel", "edit"]
            assert str(site / "repo") in (tools["scalpel"].description or "")

    asyncio.run(scenario())


def test_intel_chore_reads_the_repository_and_reports_progress(
    transport: str, site: Path, repo: Path, request: pytest.FixtureRequest
):
    before = _snapshot(repo)
    notes: list[tuple[float, str | None]] = []

    async def progress(step: float, total: float | None, message: str | None) -> None:
        notes.append((step, message))

    async def scenario() -> dict[str, Any]:
        async with connect(transport, site, request) as session:
            task = script(
                call_line("search", regex="TAX_RATE ="),
                call_line("read_file", path="shelf/pricing.py", start_line=1, end_line=8),
                call_line("finish", answer="TAX_RATE is 0.08 (shelf/pricing.py:5)"),
            )
            return await call(session, "scalpel", {"task": task, "mode": "intel"}, progress_callback=progress)

    result = asyncio.run(scenario())
    assert result["ok"] is True and result["error"] is None
    assert result["answer"] == "TAX_RATE is 0.08 (shelf/pricing.py:5)"
    assert (result["steps"], result["tool_calls"], result["invalid_calls"], result["changed"]) == (3, 3, 0, [])
    assert [n for _, n in notes] == ["search 'TAX_RATE =': 1 matches", "read_file shelf/pricing.py lines 1-8", "finish"]
    assert _snapshot(repo) == before
    if transport == "http":  # each model turn went through the gateway as task scalpel, and was metered
        metrics = httpx.get(request.getfixturevalue("gateway").base_url + "/metrics", timeout=10).text
        labels = ('endpoint="/mcp"', 'task="scalpel"', 'model="fake-script"', 'status="200"')
        assert any(
            line.startswith("seekgate_requests_total{") and all(x in line for x in labels) for line in metrics.splitlines()
        )


def test_edit_applies_a_patch_and_verifies_it(transport: str, site: Path, repo: Path, request: pytest.FixtureRequest):
    async def scenario() -> dict[str, Any]:
        async with connect(transport, site, request) as session:
            task = script(
                call_line("read_file", path="shelf/items.py"),
                call_line("apply_patch", patch=RAISE_LOW_STOCK),
                call_line("finish", answer="LOW_STOCK is 5 now"),
            )
            return await call(session, "scalpel", {"task": task, "mode": "edit", "paths": ["shelf/items.py"]})

    result = asyncio.run(scenario())
    assert result["ok"] is True, result
    assert [c["path"] for c in result["changed"]] == ["shelf/items.py"]
    assert "-LOW_STOCK = 3\n+LOW_STOCK = 5\n" in result["changed"][0]["diff"]
    assert "LOW_STOCK = 5\n" in (repo / "shelf/items.py").read_text()
    subprocess.run([sys.executable, "checks.py"], cwd=repo, check=True, capture_output=True)  # what verify ran


def test_an_edit_attempted_in_intel_mode_is_refused_and_changes_nothing(
    transport: str, site: Path, repo: Path, request: pytest.FixtureRequest
):
    before = _snapshot(repo)

    async def scenario() -> dict[str, Any]:
        async with connect(transport, site, request) as session:
            task = script(call_line("apply_patch", patch=RAISE_LOW_STOCK), call_line("finish", answer="could not edit"))
            return await call(session, "scalpel", {"task": task, "mode": "intel"})

    result = asyncio.run(scenario())
    assert (result["invalid_calls"], result["tool_calls"], result["changed"]) == (1, 1, [])
    assert _snapshot(repo) == before


def test_path_escapes_and_bad_arguments_are_tool_errors_and_the_server_keeps_serving(
    transport: str, site: Path, repo: Path, request: pytest.FixtureRequest
):
    (site / "secret.txt").write_text("outside the workspace\n")
    (repo / "leak.txt").symlink_to(site / "secret.txt")

    async def scenario() -> None:
        async with connect(transport, site, request) as session:
            for paths in (["../secret.txt"], [str(site / "secret.txt")], ["leak.txt"], ["shelf/../../secret.txt"]):
                message = await refused(session, "scalpel", {"task": "read it", "mode": "intel", "paths": paths})
                assert "outside the workspace" in message, message
            assert "unknown mode 'write'; allowed: intel, edit" in await refused(
                session, "scalpel", {"task": "x", "mode": "write"}
            )
            assert "format" in await refused(session, "scalpel", {"task": "x", "mode": "intel", "format": "yaml"})
            assert "task is empty" in await refused(session, "scalpel", {"task": "  ", "mode": "intel"})
            assert "mode: required" in await refused(session, "scalpel", {"task": "x"})
            assert "no scalpel job 'job_nope'" in await refused(session, "scalpel_status", {"job_id": "job_nope"})
            assert "no scalpel job" in await refused(session, "scalpel_cancel", {"job_id": "job_nope"})
            # A read the model tries outside the root fails as that call's result, and the chore goes on.
            task = script(call_line("read_file", path="../secret.txt"), call_line("finish", answer="refused"))
            result = await call(session, "scalpel", {"task": task, "mode": "intel"})
            assert result["ok"] is True and result["answer"] == "refused"

    asyncio.run(scenario())


def test_a_server_started_in_the_filesystem_root_refuses_chores_until_a_workspace_is_set(site: Path):
    async def scenario() -> str:
        async with stdio_session(site / "scalpel.toml", site / "stdio-data", "--workspace", "/") as session:
            return await refused(session, "scalpel", {"task": "list everything", "mode": "intel"})

    assert "the workspace is the filesystem root /: set scalpel.workspace" in asyncio.run(scenario())


def test_a_patch_that_does_not_apply_or_fails_verification_rolls_back(
    transport: str, site: Path, repo: Path, request: pytest.FixtureRequest
):
    before = _snapshot(repo)
    # Two files in one diff; the second hunk's context is not in the file: neither is written.
    stale = (
        "--- a/shelf/items.py\n+++ b/shelf/items.py\n@@ -7,1 +7,1 @@\n-LOW_STOCK = 3\n+LOW_STOCK = 4\n"
        "--- a/shelf/pricing.py\n+++ b/shelf/pricing.py\n@@ -5,1 +5,1 @@\n-TAX_RATE = 0.07\n+TAX_RATE = 0.06\n"
    )
    # Applies, but breaks checks.py (the verify command): rolled back, new file removed too.
    breaking = (
        "shelf/pricing.py\n<<<<<<< SEARCH\n    if not 0 <= percent <= 100:\n=======\n    if not 0 <= percent <= 1000:\n>>>>>>> REPLACE\n"
        "shelf/extra.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n"
    )

    async def scenario() -> dict[str, Any]:
        async with connect(transport, site, request) as session:
            task = script(
                call_line("apply_patch", patch=stale),
                call_line("apply_patch", patch=breaking),
                call_line("finish", answer="done"),
                call_line("finish", answer="done"),
            )
            return await call(session, "scalpel", {"task": task, "mode": "edit"})

    result = asyncio.run(scenario())
    assert result["ok"] is False and result["changed"] == []
    assert "no file changed" in result["error"]
    assert _snapshot(repo) == before


def test_a_background_job_reports_progress_and_cancel_stops_it_within_a_second(
    transport: str, site: Path, repo: Path, request: pytest.FixtureRequest
):
    async def scenario() -> None:
        async with connect(transport, site, request) as session:
            task = script(call_line("list_files", path="shelf"), "@wait 30000", call_line("finish", answer="too late"))
            started = await call(session, "scalpel", {"task": task, "mode": "intel", "background": True})
            assert set(started) == {"job_id", "state"} and started["state"] in ("queued", "running")
            job = started["job_id"]
            status = await call(session, "scalpel_status", {"job_id": job})
            for _ in range(50):
                if status["progress"]["step"] >= 1:
                    break
                await asyncio.sleep(0.1)
                status = await call(session, "scalpel_status", {"job_id": job})
            assert status["state"] == "running" and status["params"]["task"] == task
            assert status["progress"]["note"].startswith("list_files shelf")
            cancelled = await call(session, "scalpel_cancel", {"job_id": job})
            # "cancelled", not "running": the job ended within cancel's own one-second wait
            assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by request"
            assert (await call(session, "scalpel_status", {"job_id": job}))["state"] == "cancelled"
            # A finished job keeps its result.
            done = await call(session, "scalpel", {"task": script(), "mode": "intel", "background": True})
            for _ in range(50):
                status = await call(session, "scalpel_status", {"job_id": done["job_id"]})
                if status["state"] == "done":
                    break
                await asyncio.sleep(0.1)
            assert status["result"]["ok"] is True and status["result"]["answer"] == "script ended"

    asyncio.run(scenario())


def test_cancelling_a_job_during_its_edit_restores_the_files_within_a_second(site: Path, repo: Path):
    before = _snapshot(repo)
    slow_verify = ("--set", "scalpel.verify=sleep 30")

    async def scenario() -> dict[str, Any]:
        async with stdio_session(site / "scalpel.toml", site / "stdio-data", before=slow_verify) as session:
            task = script(call_line("apply_patch", patch=RAISE_LOW_STOCK), call_line("finish", answer="never"))
            job = (await call(session, "scalpel", {"task": task, "mode": "edit", "background": True}))["job_id"]
            for _ in range(100):  # the patch is written and its verify command is running
                if "LOW_STOCK = 5" in (repo / "shelf/items.py").read_text():
                    break
                await asyncio.sleep(0.05)
            assert "LOW_STOCK = 5" in (repo / "shelf/items.py").read_text()
            return await call(session, "scalpel_cancel", {"job_id": job})  # "cancelled" below: within its 1 s wait

    status = asyncio.run(scenario())
    assert status["state"] == "cancelled"
    assert _snapshot(repo) == before


def test_with_surr_scalpel_endpoint_chores_go_to_that_openai_compatible_server(site: Path, repo: Path, gateway: Process):
    # The module's gateway stands in for a mistralrs-server: its fake-script model answers with native tool calls.
    env = {
        "SURR_SCALPEL_ENDPOINT": gateway.base_url + "/v1/chat/completions",
        "SURR_SCALPEL_MODEL": "fake-script",
        "SURR_SCALPEL_MAX_TOKENS": "300",
    }

    async def scenario() -> dict[str, Any]:
        async with stdio_session(site / "scalpel.toml", site / "endpoint-data", env=env) as session:
            task = script(call_line("read_file", path="README.md"), call_line("finish", answer="a tiny inventory library"))
            return await call(session, "scalpel", {"task": task, "mode": "intel"})

    def served() -> float:
        metrics = httpx.get(gateway.base_url + "/metrics", timeout=10).text
        labels = ('endpoint="/v1/chat/completions"', 'model="fake-script"', 'status="200"')
        rows = [
            line
            for line in metrics.splitlines()
            if line.startswith("seekgate_requests_total{") and all(x in line for x in labels)
        ]
        return sum(float(line.rsplit(" ", 1)[1]) for line in rows)

    before = served()
    result = asyncio.run(scenario())
    assert result["ok"] is True and result["answer"] == "a tiny inventory library" and result["steps"] == 2
    assert served() - before == 2  # both turns were requests to the endpoint


@pytest.mark.parametrize(
    ("model", "ok", "invalid", "message"),
    [
        ("fake-toolmess", True, 2, "recovered after 2 invalid calls"),
        ("fake-toolbad", False, 3, "the model made 3 invalid tool calls in a row; the last: you answered in prose"),
    ],
)
def test_malformed_tool_calls_are_recovered_from_or_fail_cleanly(site: Path, repo: Path, model, ok, invalid, message):
    before = _snapshot(repo)

    async def scenario() -> dict[str, Any]:
        async with stdio_session(site / "scalpel.toml", site / "stdio-data", "--model", model) as session:
            return await call(session, "scalpel", {"task": "What does shelf do?", "mode": "intel"})

    result = asyncio.run(scenario())
    assert result["ok"] is ok and result["invalid_calls"] == invalid
    assert message in (result["answer"] if ok else result["error"])
    assert _snapshot(repo) == before


def test_jobs_left_unfinished_by_a_crash_are_reported_aborted_after_a_restart(tmp_path: Path):
    _reset(tmp_path / "repo")
    config = _config(tmp_path, tmp_path / "repo").read_text()

    async def start_job(url: str) -> str:
        async with http_session(url) as session:
            task = script("@wait 60000", call_line("finish", answer="never"))
            return (await call(session, "scalpel", {"task": task, "mode": "intel", "background": True}))["job_id"]

    async def status_of(url: str, job: str) -> dict[str, Any]:
        async with http_session(url) as session:
            return await call(session, "scalpel_status", {"job_id": job})

    with run_gateway(config, tmp_path) as first:
        job = asyncio.run(start_job(first.base_url))
        assert asyncio.run(status_of(first.base_url, job))["state"] == "running"
        first.proc.kill()  # no shutdown: the row still says running
        first.proc.wait()
    with run_gateway(config, tmp_path) as second:
        status = asyncio.run(status_of(second.base_url, job))
    assert status["state"] == "aborted" and "restarted" in status["error"]


def test_over_http_the_callers_key_and_its_task_allowlist_apply(tmp_path: Path):
    _reset(tmp_path / "repo")
    config = _config(tmp_path, tmp_path / "repo", "[guards]\nrequire_keys = true\n").read_text()
    cfg = tmp_path / "keys.toml"
    cfg.write_text(config)
    env = {"SEEKGATE_SERVER__DATA_DIR": str(tmp_path / "data")}

    def key(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "seekgate.cli.main", "--config", str(cfg), "keys", "create", "--json", *args],
            capture_output=True, text=True, check=True, env={**os.environ, **env},
        )  # fmt: skip
        return str(json.loads(out.stdout)["key"])

    async def chore(url: str, token: str) -> dict[str, Any]:
        async with http_session(url, {"Authorization": f"Bearer {token}"}) as session:
            return await call(session, "scalpel", {"task": script(), "mode": "intel"})

    with run_gateway(config, tmp_path) as server:
        answer = httpx.post(server.base_url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10)
        assert answer.status_code == 401 and "API key is required" in answer.json()["error"]["message"]
        assert asyncio.run(chore(server.base_url, key("--name", "all")))["ok"] is True
        denied = asyncio.run(chore(server.base_url, key("--name", "chat-only", "--tasks", "chat")))
    assert denied["ok"] is False and "may run the tasks chat, not 'scalpel'" in denied["error"]


@pytest.mark.engine
def test_the_bundled_model_completes_an_intel_chore_end_to_end(site: Path, repo: Path):
    async def scenario() -> dict[str, Any]:
        async with stdio_session(site / "scalpel.toml", site / "stdio-data", "--model", "smollm2-135m") as session:
            task = "What is the value of TAX_RATE in shelf/pricing.py? Answer with the number."
            return await call(session, "scalpel", {"task": task, "mode": "intel", "paths": ["shelf/pricing.py"]})

    result = asyncio.run(scenario())
    # SmolLM2-135M is tiny (benchmarks/scalpel.py measures how well it does): what this shows is
    # that the chore ran on the real engine through the whole path and ended with an answer or
    # one of the loop's clean stops. Its calls are valid by grammar, but a call it rambles in can
    # still be cut at max_tokens: three such turns in a row end the chore, and say so.
    assert result["steps"] >= 1 and result["elapsed_s"] > 0, result
    if result["ok"]:
        assert result["tool_calls"] >= 1 and isinstance(result["answer"], str), result
    else:
        assert result["error"].startswith(("step limit", "time budget", "the model made 3 invalid tool calls")), result
