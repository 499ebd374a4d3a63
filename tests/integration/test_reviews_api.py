"""The review queue over HTTP and from `seekgate reviews`, against the real gateway: reviews are
seeded straight into the gateway's data store (a second writer on the same WAL database), then
polled by the client and decided by reviewers through the admin API and the CLI."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seekgate.cli.main import main
from seekgate.reviews.store import Review, ReviewStore
from tests.fixtures.servers import Process, run_gateway

ADMIN_KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
CONFIG = "[server]\npreload_default = false\n"
REQUEST = {"messages": [{"role": "user", "content": "drop the production table"}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("reviews"), env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def store(gateway: Process) -> ReviewStore:
    db = Path(gateway.log).parent / "data" / "seekgate.db"
    assert db.is_file(), "the gateway creates its data store at start-up"
    return ReviewStore(db)


@pytest.fixture
def seed(store: ReviewStore):
    def submit(candidate: str = "DROP TABLE users;", task: str = "ops") -> Review:
        usage = {"prompt_tokens": 12, "completion_tokens": 5}
        return asyncio.run(store.submit(task, "fake-echo", REQUEST, candidate, usage))

    return submit


def _get(gateway: Process, path: str, **kw) -> httpx.Response:
    return httpx.get(gateway.base_url + path, timeout=30, **kw)


def _post(gateway: Process, path: str, **kw) -> httpx.Response:
    return httpx.post(gateway.base_url + path, timeout=30, **kw)


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


# --- the client's poll ------------------------------------------------------------------------


def test_the_client_polls_a_pending_review_without_any_key(gateway, seed):
    review = seed()
    resp = _get(gateway, f"/v1/reviews/{review.id}")
    assert resp.status_code == 200
    assert resp.json() == {"id": review.id, "object": "review", "status": "pending", "created": int(review.created),
                           "task": "ops", "model": "fake-echo"}  # fmt: skip


def test_an_approved_review_polls_as_an_openai_chat_completion_with_the_edited_answer(gateway, seed):
    review = seed(candidate="DROP TABLE users;")
    approved = _post(gateway, f"/admin/reviews/{review.id}/approve", json={"answer": "No: take a backup first."}, headers=AUTH)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["answer"] == "No: take a backup first." and approved.json()["candidate"] == "DROP TABLE users;"
    poll = _get(gateway, f"/v1/reviews/{review.id}").json()
    assert poll["status"] == "approved" and "reason" not in poll
    completion = poll["completion"]
    assert completion["id"] == review.id and completion["object"] == "chat.completion" and completion["model"] == "fake-echo"
    assert completion["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "No: take a backup first."},
                                      "finish_reason": "stop", "logprobs": None}]  # fmt: skip
    assert completion["usage"] == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def test_approving_without_a_body_or_with_an_empty_object_sends_the_candidate(gateway, seed):
    bare, empty = seed(candidate="candidate one"), seed(candidate="candidate two")
    assert _post(gateway, f"/admin/reviews/{bare.id}/approve", headers=AUTH).status_code == 200
    assert _post(gateway, f"/admin/reviews/{empty.id}/approve", json={}, headers=AUTH).status_code == 200
    for review, text in ((bare, "candidate one"), (empty, "candidate two")):
        assert _get(gateway, f"/v1/reviews/{review.id}").json()["completion"]["choices"][0]["message"]["content"] == text


def test_a_rejected_review_polls_with_the_reason_and_no_completion(gateway, seed):
    review = seed()
    rejected = _post(gateway, f"/admin/reviews/{review.id}/reject", json={"reason": "destructive"}, headers=AUTH)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    poll = _get(gateway, f"/v1/reviews/{review.id}").json()
    assert poll["status"] == "rejected" and poll["reason"] == "destructive" and "completion" not in poll


def test_an_unknown_review_is_404_in_openai_error_format_everywhere(gateway):
    missing = "rev_000000000000000000000000"
    assert missing in _error(_get(gateway, f"/v1/reviews/{missing}"), 404)["message"]
    _error(_get(gateway, f"/admin/reviews/{missing}", headers=AUTH), 404)
    _error(_post(gateway, f"/admin/reviews/{missing}/approve", json={}, headers=AUTH), 404)
    _error(_post(gateway, f"/admin/reviews/{missing}/reject", json={"reason": "x"}, headers=AUTH), 404)


# --- the reviewers' admin API -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/admin/reviews", None), ("GET", "/admin/reviews/{id}", None),
     ("POST", "/admin/reviews/{id}/approve", {}), ("POST", "/admin/reviews/{id}/reject", {"reason": "x"})],
)  # fmt: skip
def test_every_admin_route_needs_the_admin_key(gateway, seed, method, path, body):
    review = seed()
    url = gateway.base_url + path.format(id=review.id)
    assert _error(httpx.request(method, url, json=body, timeout=30), 401)["type"] == "authentication_error"
    assert _error(httpx.request(method, url, json=body, headers={"Authorization": "Bearer wrong"}, timeout=30), 403)
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["status"] == "pending"  # nothing was decided


def test_the_admin_key_also_works_as_x_admin_key(gateway, seed):
    review = seed()
    assert _get(gateway, f"/admin/reviews/{review.id}", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 200


def test_reviewers_list_newest_first_with_request_and_candidate_filtered_by_status(gateway, seed):
    older, newer, decided = seed(candidate="older"), seed(candidate="newer"), seed(candidate="decided")
    _post(gateway, f"/admin/reviews/{decided.id}/reject", json={"reason": "no"}, headers=AUTH)
    pending = _get(gateway, "/admin/reviews?status=pending", headers=AUTH).json()
    assert pending["object"] == "list"
    ids = [r["id"] for r in pending["data"]]
    assert ids.index(newer.id) < ids.index(older.id) and decided.id not in ids
    mine = next(r for r in pending["data"] if r["id"] == newer.id)
    assert mine["candidate"] == "newer" and mine["request"] == REQUEST and mine["status"] == "pending"
    rejected = _get(gateway, "/admin/reviews?status=rejected", headers=AUTH).json()["data"]
    assert decided.id in [r["id"] for r in rejected]
    everything = [r["id"] for r in _get(gateway, "/admin/reviews", headers=AUTH).json()["data"]]
    assert {older.id, newer.id, decided.id} <= set(everything)
    assert [r["id"] for r in _get(gateway, "/admin/reviews?limit=1", headers=AUTH).json()["data"]] == [everything[0]]


@pytest.mark.parametrize(("query", "param"), [("status=maybe", "status"), ("limit=0", "limit"), ("limit=ten", "limit")])
def test_a_bad_list_query_is_400_naming_the_parameter(gateway, query, param):
    assert _error(_get(gateway, f"/admin/reviews?{query}", headers=AUTH), 400)["param"] == param


def test_reviewers_see_one_review_with_its_request_and_candidate(gateway, seed):
    review = seed(candidate="show me")
    shown = _get(gateway, f"/admin/reviews/{review.id}", headers=AUTH).json()
    assert shown["id"] == review.id and shown["candidate"] == "show me" and shown["request"] == REQUEST
    assert shown["usage"] == {"prompt_tokens": 12, "completion_tokens": 5} and shown["answer"] is None


def test_reject_needs_a_reason(gateway, seed):
    review = seed()
    url = f"/admin/reviews/{review.id}/reject"
    assert "reason" in _error(_post(gateway, url, json={}, headers=AUTH), 400)["message"]
    assert _error(_post(gateway, url, json={"reason": "   "}, headers=AUTH), 400)["param"] == "reason"
    assert "empty" in _error(_post(gateway, url, headers=AUTH), 400)["message"]
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["status"] == "pending"


@pytest.mark.parametrize("path", ["approve", "reject"])
def test_bad_json_or_wrong_types_are_400(gateway, seed, path):
    review = seed()
    url = f"/admin/reviews/{review.id}/{path}"
    headers = AUTH | {"Content-Type": "application/json"}
    assert "not valid JSON" in _error(_post(gateway, url, content=b"{not json", headers=headers), 400)["message"]
    field = "answer" if path == "approve" else "reason"
    assert _error(_post(gateway, url, json={field: 5}, headers=AUTH), 400)["param"] == field
    assert _error(_post(gateway, url, json={field: "x", "extra": 1}, headers=AUTH), 400)
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["status"] == "pending"


def test_a_decided_review_cannot_be_decided_again(gateway, seed):
    review = seed()
    assert _post(gateway, f"/admin/reviews/{review.id}/approve", json={"answer": "fine"}, headers=AUTH).status_code == 200
    for path, body in (("approve", {}), ("reject", {"reason": "late"})):
        error = _error(_post(gateway, f"/admin/reviews/{review.id}/{path}", json=body, headers=AUTH), 400)
        assert error["code"] == "review_already_decided" and review.id in error["message"]
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["completion"]["choices"][0]["message"]["content"] == "fine"


# --- `seekgate reviews` ---------------------------------------------------------------------------


@pytest.fixture
def cli(gateway, monkeypatch, capsys):
    monkeypatch.setenv("SEEKGATE_ADMIN_KEY", ADMIN_KEY)

    def run(*argv: str, url: str | None = None) -> tuple[int, str, str]:
        code = main(["reviews", *argv, "--url", url or gateway.base_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_installed_command_lists_pending_reviews_as_json(gateway, seed):
    review = seed(candidate="from the real command")
    result = subprocess.run(
        [sys.executable, "-m", "seekgate.cli.main", "reviews", "list", "--url", gateway.base_url, "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "SEEKGATE_ADMIN_KEY": ADMIN_KEY},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    mine = next(r for r in rows if r["id"] == review.id)
    assert mine["candidate"] == "from the real command" and all(r["status"] == "pending" for r in rows)


def test_cli_list_shows_a_table_and_filters_by_status(cli, seed, gateway):
    pending, decided = seed(candidate="waiting   for\nyou"), seed()
    _post(gateway, f"/admin/reviews/{decided.id}/reject", json={"reason": "no"}, headers=AUTH)
    code, out, _ = cli("list")
    line = next(line for line in out.splitlines() if line.startswith(pending.id))
    assert code == 0 and "pending" in line and "waiting for you" in line and decided.id not in out
    code, out, _ = cli("list", "--status", "rejected", "--json")
    assert code == 0 and decided.id in [json.loads(line)["id"] for line in out.splitlines()]


def test_cli_show_prints_the_review_with_its_request(cli, seed):
    review = seed(candidate="shown by the cli")
    code, out, _ = cli("show", review.id)
    shown = json.loads(out)
    assert code == 0 and shown["candidate"] == "shown by the cli" and shown["request"] == REQUEST


def test_cli_approve_with_an_edit_from_a_file_reaches_the_client(cli, seed, gateway, tmp_path):
    review = seed(candidate="rm -rf /")
    edit = tmp_path / "answer.md"
    edit.write_text("Use `rm -rf ./build` instead.\n")
    code, out, _ = cli("approve", review.id, "--answer-file", str(edit))
    assert code == 0 and out.strip() == f"{review.id}: approved"
    content = _get(gateway, f"/v1/reviews/{review.id}").json()["completion"]["choices"][0]["message"]["content"]
    assert content == "Use `rm -rf ./build` instead.\n"


def test_cli_approve_with_an_inline_edit_or_none(cli, seed, gateway):
    edited, as_is = seed(candidate="first"), seed(candidate="second")
    assert cli("approve", edited.id, "--answer", "edited inline")[0] == 0
    assert cli("approve", as_is.id)[0] == 0
    answers = {r.id: _get(gateway, f"/v1/reviews/{r.id}").json()["completion"]["choices"][0]["message"]["content"] for r in (edited, as_is)}
    assert answers == {edited.id: "edited inline", as_is.id: "second"}


def test_cli_reject_with_a_reason_then_a_second_decision_fails_with_the_gateways_message(cli, seed, gateway):
    review = seed()
    code, out, _ = cli("reject", review.id, "--reason", "touches production")
    assert code == 0 and out.strip() == f"{review.id}: rejected"
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["reason"] == "touches production"
    code, out, err = cli("approve", review.id)
    assert code == 1 and out == "" and "400" in err and "already decided" in err


def test_cli_errors_say_what_the_gateway_said_and_exit_1(cli, monkeypatch):
    code, _, err = cli("show", "rev_000000000000000000000000")
    assert code == 1 and "404" in err and "rev_000000000000000000000000" in err
    code, _, err = cli("show", "rev_x?status=pending")  # the id is one path segment, not a query
    assert code == 1 and "no review 'rev_x?status=pending'" in err
    monkeypatch.setenv("SEEKGATE_ADMIN_KEY", "not-the-key")
    code, _, err = cli("list")
    assert code == 1 and "403" in err and "wrong admin key" in err


def test_cli_reports_an_unreachable_gateway(cli):
    from tests.fixtures.servers import free_port

    code, _, err = cli("list", url=f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "cannot reach the gateway" in err


@pytest.mark.parametrize(
    "argv",
    [["approve", "rev_x", "--answer", "a", "--answer-file", "f"], ["reject", "rev_x"], ["list", "--status", "maybe"], ["frobnicate"]],
)
def test_cli_usage_errors_exit_2(cli, argv):
    with pytest.raises(SystemExit) as exited:
        cli(*argv)
    assert exited.value.code == 2


def test_cli_approve_with_a_missing_answer_file_is_a_usage_error_and_decides_nothing(cli, seed, gateway, tmp_path):
    review = seed()
    code, _, err = cli("approve", review.id, "--answer-file", str(tmp_path / "nope.md"))
    assert code == 2 and "nope.md" in err
    assert _get(gateway, f"/v1/reviews/{review.id}").json()["status"] == "pending"
