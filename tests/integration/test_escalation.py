"""Risk escalation: to a stronger model, on a flagged answer, and to the human-review queue,
which survives the gateway being killed."""

import os
import signal
import subprocess
import sys

import httpx
import openai

from tests.fixtures.servers import run_gateway
from tests.integration.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _chat(gateway, task: str, risk: str, text: str = "please check", **extra) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(gateway.base_url + "/v1/chat/completions", json=body, headers={"X-Task-Type": task, "X-Risk-Level": risk}, timeout=120)


def test_low_risk_stays_on_the_local_route(gateway):
    resp = _chat(gateway, "guarded", "low")
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "please check"
    assert "x-seekgate-escalated" not in resp.headers


def test_high_risk_goes_to_the_configured_stronger_model(gateway):
    resp = _chat(gateway, "to-cloud", "high")
    assert resp.status_code == 200 and resp.headers["x-seekgate-model"] == "fake-fixed"
    assert resp.headers["x-seekgate-escalated"] == "high risk: fake-fixed"


def test_med_risk_escalates_only_when_the_answer_is_flagged(gateway):
    fine = _chat(gateway, "guarded", "med")
    assert fine.headers["x-seekgate-model"] == "fake-echo" and "x-seekgate-escalated" not in fine.headers
    flagged = _chat(gateway, "guarded", "med", text="")  # the echo model answers nothing: flagged
    assert flagged.headers["x-seekgate-escalated"] == "flagged (empty answer): fake-fixed"
    assert flagged.json()["choices"][0]["message"]["content"] == "Hello from the fake backend."


def test_high_risk_waits_for_a_reviewer_who_approves_with_an_edit(gateway, client: openai.OpenAI):
    queued = _chat(gateway, "guarded", "high", text="drop the production table", stream=True)
    assert queued.status_code == 202
    review = queued.json()
    assert review["status"] == "pending" and queued.headers["location"] == review["poll"]
    poll = httpx.get(gateway.base_url + review["poll"]).json()
    assert poll["status"] == "pending" and "completion" not in poll
    listed = httpx.get(gateway.base_url + "/admin/reviews?status=pending", headers=AUTH).json()["data"]
    mine = next(r for r in listed if r["id"] == review["id"])
    assert mine["candidate"] == "drop the production table" and mine["request"]["messages"][-1]["content"][0]["text"] == "drop the production table"
    approved = httpx.post(gateway.base_url + f"/admin/reviews/{review['id']}/approve", json={"answer": "No: take a backup first."}, headers=AUTH)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    done = httpx.get(gateway.base_url + review["poll"]).json()
    assert done["completion"]["choices"][0]["message"]["content"] == "No: take a backup first."
    again = httpx.post(gateway.base_url + f"/admin/reviews/{review['id']}/reject", json={"reason": "late"}, headers=AUTH)
    assert again.status_code == 400 and again.json()["error"]["code"] == "review_already_decided"


def test_reviewers_reject_with_a_reason_and_bad_input_is_refused(gateway):
    review = _chat(gateway, "guarded", "high").json()
    url = gateway.base_url + f"/admin/reviews/{review['id']}"
    assert httpx.post(url + "/reject", json={}, headers=AUTH).status_code == 400
    assert httpx.post(url + "/reject", json={"reason": "  "}, headers=AUTH).status_code == 400
    assert httpx.post(url + "/reject", json={"reason": "unsafe"}, headers={}).status_code == 401
    assert httpx.post(url + "/reject", json={"reason": "unsafe"}, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert httpx.post(url + "/reject", json={"reason": "unsafe"}, headers=AUTH).json()["status"] == "rejected"
    assert httpx.get(gateway.base_url + review["poll"]).json()["reason"] == "unsafe"
    assert httpx.get(gateway.base_url + "/v1/reviews/rev_nothing").status_code == 404


def test_the_review_queue_survives_a_kill_and_restart(tmp_path):
    config = '[server]\npreload_default = false\n[tasks.chat]\nroute = ["fake-echo"]\non_high_risk = "review"\n'
    env = {"SEEKGATE_ADMIN_KEY": ADMIN_KEY}
    with run_gateway(config, tmp_path, env=env) as first:
        review = _chat(first, "chat", "high", text="rotate the keys").json()
        os.kill(first.proc.pid, signal.SIGKILL)  # no clean shutdown
        first.proc.wait()
    with run_gateway(config, tmp_path, env=env) as second:
        assert httpx.get(second.base_url + review["poll"]).json()["status"] == "pending"
        cli = subprocess.run(
            [sys.executable, "-m", "seekgate.cli.main", "reviews", "list", "--url", second.base_url, "--json"],
            capture_output=True, text=True, timeout=60, env={**os.environ, **env},
        )  # fmt: skip
        assert cli.returncode == 0 and review["id"] in cli.stdout and "rotate the keys" in cli.stdout
        approve = subprocess.run(
            [sys.executable, "-m", "seekgate.cli.main", "reviews", "approve", review["id"], "--url", second.base_url],
            capture_output=True, text=True, timeout=60, env={**os.environ, **env},
        )  # fmt: skip
        assert approve.returncode == 0 and "approved" in approve.stdout
        done = httpx.get(second.base_url + review["poll"]).json()
        assert done["completion"]["choices"][0]["message"]["content"] == "rotate the keys"
