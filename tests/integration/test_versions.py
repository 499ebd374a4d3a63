"""Model versions, pins, rollback and hot-swap through the admin API and the CLI."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from tests.fixtures.servers import run_gateway
from tests.integration.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _admin(gateway, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, gateway.base_url + path, headers=kw.pop("headers", AUTH), timeout=120, **kw)


def _served(client: openai.OpenAI, model: str, **headers: str) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "echo"}], extra_headers=headers)
    return raw.headers["x-seekgate-model"], raw.parse().choices[0].message.content


def test_a_bare_family_resolves_to_its_pin_and_a_header_pins_one_request(client: openai.OpenAI):
    assert _served(client, "fakecoder") == ("fakecoder@2025-01-10", "echo")  # newest by default
    assert _served(client, "fakecoder", **{"X-Model-Alias": "fakecoder@2024-06-17"}) == ("fakecoder@2024-06-17", "Hello from the fake backend.")
    assert _served(client, "fakecoder@2024-06-17")[0] == "fakecoder@2024-06-17"


def test_pin_and_rollback_move_the_bare_family(client: openai.OpenAI, gateway):
    moved = _admin(gateway, "POST", "/admin/models/fakecoder/pin", json={"version": "2024-06-17"})
    assert moved.status_code == 200 and moved.json() == {"family": "fakecoder", "previous": "2025-01-10", "current": "2024-06-17"}
    assert _served(client, "fakecoder")[0] == "fakecoder@2024-06-17"
    back = _admin(gateway, "POST", "/admin/models/fakecoder/rollback")
    assert back.json()["current"] == "2025-01-10" and _served(client, "fakecoder")[0] == "fakecoder@2025-01-10"
    again = _admin(gateway, "POST", "/admin/models/fakecoder/rollback")
    assert again.status_code == 400 and "no earlier pin" in again.json()["error"]["message"]
    state = _admin(gateway, "GET", "/admin/models").json()["pins"]["fakecoder"]
    assert state == {"current": "2025-01-10", "versions": ["2024-06-17", "2025-01-10"], "history": []}


def test_pins_survive_a_restart(gateway, workdir):
    assert _admin(gateway, "POST", "/admin/models/fakecoder/pin", json={"version": "2024-06-17"}).status_code == 200
    try:
        # A second gateway on the same data directory starts with the moved pin.
        with run_gateway(gateway.config.replace("preload_default = true", ""), workdir, env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as second:
            assert _admin(second, "GET", "/admin/models").json()["pins"]["fakecoder"]["current"] == "2024-06-17"
    finally:
        _admin(gateway, "POST", "/admin/models/fakecoder/rollback")


def test_unknown_versions_families_and_bad_keys_are_clear_errors(client: openai.OpenAI, gateway):
    with pytest.raises(openai.NotFoundError) as info:
        _served(client, "fakecoder", **{"X-Model-Alias": "fakecoder@1999-01-01"})
    assert "fakecoder@2024-06-17" in info.value.message
    bad = _admin(gateway, "POST", "/admin/models/fakecoder/pin", json={"version": "1999-01-01"})
    assert bad.status_code == 400 and "2025-01-10" in bad.json()["error"]["message"]
    assert _admin(gateway, "POST", "/admin/models/nothing/rollback").status_code == 404
    assert _admin(gateway, "POST", "/admin/models/fakecoder/pin", json={"ver": "x"}).status_code == 400
    assert _admin(gateway, "GET", "/admin/models", headers={}).status_code == 401
    assert _admin(gateway, "GET", "/admin/models", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert _admin(gateway, "GET", "/admin/models", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 200


def test_cli_moves_and_rolls_back_a_pin(gateway):
    env = {"SEEKGATE_ADMIN_KEY": ADMIN_KEY, "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "seekgate.cli.main", "models"]
    moved = subprocess.run([*base, "pin", "fakecoder", "2024-06-17", "--url", gateway.base_url], capture_output=True, text=True, env=env, timeout=60)
    assert moved.returncode == 0 and "2025-01-10 -> 2024-06-17" in moved.stdout
    back = subprocess.run([*base, "rollback", "fakecoder", "--url", gateway.base_url], capture_output=True, text=True, env=env, timeout=60)
    assert back.returncode == 0 and "-> 2025-01-10" in back.stdout
    refused = subprocess.run([*base, "rollback", "fakecoder", "--url", gateway.base_url], capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1 and "no earlier pin" in refused.stderr


def test_hot_swap_under_concurrent_load_fails_no_request(gateway, client, aclient: openai.AsyncOpenAI, tiny_deepseek2: Path, smollm2_path: Path):
    async def one(i: int) -> int:
        if i % 2:
            stream = await aclient.chat.completions.create(model="swappable", messages=[{"role": "user", "content": f"Story {i}"}], max_tokens=24, stream=True)
            return len([c async for c in stream if c.choices and c.choices[0].delta.content])
        resp = await aclient.chat.completions.create(model="swappable", messages=[{"role": "user", "content": f"Story {i}"}], max_tokens=24)
        return resp.usage.completion_tokens

    async def scenario() -> list[int]:
        await one(0)  # loaded before the swap
        load = [asyncio.create_task(one(i)) for i in range(8)]
        await asyncio.sleep(0.3)
        swapped = await asyncio.to_thread(_admin, gateway, "POST", "/admin/models/swappable/swap", json={"path": str(tiny_deepseek2)})
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["current"] == str(tiny_deepseek2)
        load += [asyncio.create_task(one(i)) for i in range(8, 12)]
        return await asyncio.gather(*load)

    results = asyncio.run(scenario())
    assert len(results) == 12 and all(n > 0 for n in results)
    assert _admin(gateway, "GET", "/admin/models").json()["loaded"]["swappable"] == str(tiny_deepseek2)
    # A swap that cannot load leaves the current model serving, and says why.
    bad = tiny_deepseek2.parent / "not-a-model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    failed = _admin(gateway, "POST", "/admin/models/swappable/swap", json={"path": str(bad)})
    assert failed.status_code == 503 and "keeps serving" in failed.json()["error"]["message"]
    after = client.chat.completions.create(model="swappable", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert after.usage.completion_tokens > 0
    assert _admin(gateway, "POST", "/admin/models/swappable/swap", json={"path": str(smollm2_path)}).status_code == 200
    assert _admin(gateway, "POST", "/admin/models/refused/swap", json={"path": str(smollm2_path)}).status_code == 400
