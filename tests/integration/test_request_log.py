"""The request log through the real gateway: requests made with the OpenAI SDK show up in
`GET /admin/requests` with what the gateway decided (task, model, status, tokens, cache, guards,
the redacted prompt and answer), filter and page there and in `seekgate requests` (a separate
process reading the same database), and a clean shutdown loses none of them."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from seekgate.telemetry.requestlog import RequestLog
from tests.fixtures.servers import Process, run_gateway

ADMIN_KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
CONFIG = """
[server]
default_model = "fake-echo"
preload_default = false

[admin]
api_key = "env::SEEKGATE_ADMIN_KEY"

[telemetry]
log_prompts = true

[guards.profiles.default]
names = false

[models.fake-down]
backend = "fake"
upstream_model = "error-503"

[tasks.chat]
route = ["fake-echo"]

[tasks.cached]
route = ["fake-echo"]
cacheable = true

[tasks.down]
route = ["fake-down"]

[tasks.limited]
route = ["fake-echo"]
requests_per_minute = 1
"""
_rng = random.Random(7)
GITHUB = "gh" + "p_" + "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(36))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("request-log"), env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


def _chat(client: openai.OpenAI, text: str, task: str = "chat", request_id: str | None = None, **kw: object) -> str:
    """Send one chat request; return its request id (from the response header)."""
    headers = {"X-Task-Type": task} | ({"X-Request-Id": request_id} if request_id else {})
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], extra_headers=headers, **kw
    )
    if kw.get("stream"):
        for _ in raw.parse():
            pass
    return raw.headers["x-request-id"]


def _failing(client: openai.OpenAI, task: str, request_id: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as failed:
        _chat(client, "hello", task=task, request_id=request_id)
    return failed.value


def _get(gateway: Process, path: str, **kw: object) -> httpx.Response:
    return httpx.get(gateway.base_url + path, timeout=30, **kw)  # type: ignore[arg-type]


def _record(gateway: Process, request_id: str) -> dict:
    """The stored record of a request: the writer stores it moments after the response."""
    deadline = time.monotonic() + 15
    while True:
        resp = _get(gateway, f"/admin/requests/{request_id}", headers=AUTH)
        if resp.status_code == 200 or time.monotonic() > deadline:
            assert resp.status_code == 200, resp.text
            return resp.json()
        time.sleep(0.05)


def _list(gateway: Process, query: str) -> list[dict]:
    resp = _get(gateway, f"/admin/requests?{query}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "list"
    return body["data"]


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def _uid(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


# --- what a record holds -------------------------------------------------------------------------


def test_a_chat_request_is_logged_with_what_the_gateway_decided(gateway, client):
    request_id = _chat(client, "explain this loop", request_id=_uid("chat"))
    record = _record(gateway, request_id)
    assert record["id"] == request_id and record["endpoint"] == "/v1/chat/completions" and record["status"] == 200
    assert record["task"] == "chat" and record["model"] == "fake-echo" and record["backend"]
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0
    assert record["latency_ms"] > 0 and record["stream"] is False and record["error"] is None
    assert record["caller"] == "anonymous" and abs(record["time"] - time.time()) < 60
    assert "explain this loop" in record["prompt"] and "explain this loop" in record["answer"]


def test_a_streamed_request_is_logged_as_a_stream_with_its_time_to_first_token(gateway, client):
    record = _record(gateway, _chat(client, "stream me", stream=True))
    assert record["stream"] is True and record["status"] == 200 and record["ttft_ms"] is not None
    assert record["task"] == "chat" and record["model"] == "fake-echo"


def test_a_secret_in_the_prompt_is_stored_redacted_and_counted(gateway, client):
    record = _record(gateway, _chat(client, f"my token is {GITHUB} keep it safe"))
    assert GITHUB not in json.dumps(record)
    assert "keep it safe" in record["prompt"]
    assert any(kind.startswith("secret:") for kind in record["guards"]), record["guards"]


def test_a_failed_request_is_logged_with_its_status_and_error_code(gateway, client):
    request_id = _uid("down")
    assert _failing(client, "down", request_id).status_code == 503
    record = _record(gateway, request_id)
    assert record["status"] == 503 and record["error"] and record["task"] == "down"


# --- filters ---------------------------------------------------------------------------------------


def test_filters_by_task_model_status_errors_and_time(gateway, client):
    ok, down = _chat(client, "fine", request_id=_uid("ok")), _uid("down")
    _failing(client, "down", down)
    _record(gateway, ok)
    _record(gateway, down)
    by_task = _list(gateway, "task=down&limit=1000")
    assert down in [r["id"] for r in by_task] and ok not in [r["id"] for r in by_task]
    assert all(r["task"] == "down" for r in by_task)
    assert ok in [r["id"] for r in _list(gateway, "model=fake-echo&limit=1000")]
    for query in ("status=503", "status=5xx", "errors=true"):
        found = [r["id"] for r in _list(gateway, query + "&limit=1000")]
        assert down in found and ok not in found, query
    assert ok in [r["id"] for r in _list(gateway, "status=2xx&since=5m&limit=1000")]
    assert _list(gateway, "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z") == []


def test_a_rate_limited_request_is_found_by_its_status(gateway, client):
    first, second = _uid("limited"), _uid("limited")
    _chat(client, "one", task="limited", request_id=first)
    assert _failing(client, "limited", second).status_code == 429
    _record(gateway, second)
    found = _list(gateway, "status=429&limit=1000")
    assert [r["id"] for r in found] == [second] and found[0]["error"].startswith("rate_limit")
    assert first not in [r["id"] for r in _list(gateway, "errors=true&limit=1000")]


def test_cache_results_filter(gateway, client):
    text = _uid("cache me")
    miss = _chat(client, text, task="cached", temperature=0)
    hit = _chat(client, text, task="cached", temperature=0)
    assert (_record(gateway, miss)["cache"], _record(gateway, hit)["cache"]) == ("miss", "hit")
    hits = [r["id"] for r in _list(gateway, "cache=hit&limit=1000")]
    assert hit in hits and miss not in hits


def test_newest_first_with_limit_and_paging(gateway, client):
    ids = [_chat(client, f"page {i}", request_id=_uid(f"page{i}")) for i in range(3)]
    _record(gateway, ids[-1])
    body = _get(gateway, "/admin/requests?limit=2", headers=AUTH).json()
    assert [r["id"] for r in body["data"]] == [ids[2], ids[1]] and body["has_more"] is True
    after = _list(gateway, f"limit=1&before={ids[1]}")
    assert [r["id"] for r in after] == [ids[0]]


# --- the admin rule and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/requests", "/admin/requests/anything"])
def test_the_request_log_needs_the_admin_key(gateway, path):
    assert _error(_get(gateway, path), 401)["type"] == "authentication_error"
    _error(_get(gateway, path, headers={"Authorization": "Bearer wrong"}), 403)


@pytest.mark.parametrize(
    ("query", "param"),
    [("status=abc", "status"), ("status=6xx", "status"), ("limit=0", "limit"), ("limit=1001", "limit"), ("since=yesterday", "since"),
     ("cache=warm", "cache"), ("errors=maybe", "errors"), ("before=req_unknown", "before"), ("modle=fake-echo", "modle")],
)  # fmt: skip
def test_a_bad_query_is_400_naming_the_parameter(gateway, query, param):
    error = _error(_get(gateway, f"/admin/requests?{query}", headers=AUTH), 400)
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_an_unknown_request_is_404(gateway):
    error = _error(_get(gateway, "/admin/requests/req_nope", headers=AUTH), 404)
    assert "req_nope" in error["message"] and error["code"] == "request_not_found"


# --- `seekgate requests` -------------------------------------------------------------------------------


def _cli(gateway: Process, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process, on the gateway's config and data folder."""
    config = gateway.log.with_suffix(".toml")
    env = {**os.environ, "SEEKGATE_SERVER__DATA_DIR": str(gateway.log.parent / "data")}
    cmd = [sys.executable, "-m", "seekgate.cli.main", "--config", str(config), "requests", *argv]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, env=env)


def test_cli_lists_filtered_requests_as_json_lines_and_as_a_table(gateway, client):
    ok, down = _chat(client, "from the cli", request_id=_uid("cli")), _uid("clidown")
    _failing(client, "down", down)
    _record(gateway, ok)
    _record(gateway, down)
    result = _cli(gateway, "--task", "chat", "--since", "10m", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert ok in [r["id"] for r in rows] and all(r["task"] == "chat" for r in rows)
    result = _cli(gateway, "--errors", "--status", "5xx")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:3] == ["time", "(UTC)", "id"]
    mine = next(line for line in lines if down in line)
    assert "down" in mine.split() and "503" in mine.split() and ok not in result.stdout


def test_cli_shows_one_request_with_its_prompt_and_answer(gateway, client):
    request_id = _chat(client, "show me in the cli", request_id=_uid("show"))
    _record(gateway, request_id)
    result = _cli(gateway, "show", request_id)
    assert result.returncode == 0, result.stderr
    assert f"id:             {request_id}" in result.stdout and "--- prompt ---" in result.stdout
    assert "show me in the cli" in result.stdout.split("--- prompt ---")[1]
    as_json = json.loads(_cli(gateway, "show", request_id, "--json").stdout)
    assert as_json["id"] == request_id and as_json["task"] == "chat"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [(("--status", "abc"), 2, "--status"), (("--since", "yesterday"), 2, "--since"), (("--limit", "0"), 2, "--limit"),
     (("--cache", "warm"), 2, "--cache"), (("show", "req_nope"), 1, "req_nope")],
)  # fmt: skip
def test_cli_bad_input_exits_with_a_clear_message(gateway, argv, code, message):
    result = _cli(gateway, *argv)
    assert result.returncode == code and message in result.stderr and result.stdout == ""


# --- nothing lost ---------------------------------------------------------------------------------------


def test_a_clean_shutdown_stores_every_request_already_answered(tmp_path):
    with run_gateway(CONFIG, tmp_path, env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as server:
        quick = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
        ids = [_chat(quick, f"last words {i}") for i in range(40)]
    assert server.proc.returncode is not None
    log = RequestLog(tmp_path / "data" / "seekgate.db", 7, 1000)
    stored = {r.id for r in log.query(limit=1000)}
    log.close()
    assert set(ids) <= stored
