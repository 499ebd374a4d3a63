import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from seekgate.review.github import (
    DIFF_MEDIA_TYPE,
    FOLLOWUP_MARKER,
    REVIEW_MARKER,
    GitHub,
    GitHubError,
    InvalidEvent,
    InvalidRepository,
    Published,
    PullRef,
    Repository,
    actions_context,
    comment_body,
    get_pull_request,
    publish_review,
    pull_request_diff,
)
from seekgate.review.types import Comment
from tests.fixtures.fake_github import FakeGitHub, fake_github

T = TypeVar("T")

TOKEN = "ghs_test_token"
HEAD = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
DIFF = """diff --git a/app/core.py b/app/core.py
index 1111111..2222222 100644
--- a/app/core.py
+++ b/app/core.py
@@ -1,5 +1,6 @@
 import os
-x = 1
+x = 2
+y = 3
 
 def main():
     return x
@@ -20,3 +21,4 @@ def helper():
     a = 1
     b = 2
+    c = 3
     return a
diff --git a/docs/notes.md b/docs/notes.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/docs/notes.md
@@ -0,0 +1,2 @@
+# Notes
+Form\x0cfeed inside a line.
"""
PR = PullRef(Repository("octo", "demo"), 7)

UNUSED = Comment(path="app/core.py", line=3, severity="warning", body="`y` is never used.")
SHADOW = Comment(path="app/core.py", line=2, severity="error", body="This rebinds the module constant `x`.")
TYPO = Comment(path="docs/notes.md", line=2, severity="suggestion", body="Remove the form feed.")
OUTSIDE = Comment(path="app/core.py", line=15, severity="error", body="A line the diff does not show.")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=TOKEN, repository="octo/demo")
    fake.add_pull(7, DIFF, head_sha=HEAD, base_sha="b" * 40, base_ref="release")
    with fake_github(fake) as served:
        yield served


def run(fake: FakeGitHub, scenario: Callable[[GitHub], Awaitable[T]], *, token: str = TOKEN, sleeps: list[float] | None = None) -> T:
    """Run `scenario` against the fake with a real httpx client over loopback; sleeps are recorded, not slept."""
    recorded = sleeps if sleeps is not None else []

    async def no_sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def main() -> T:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await scenario(GitHub(token, client=client, api_url=fake.base_url, max_wait=10.0, sleep=no_sleep))

    return asyncio.run(main())


def publish(fake: FakeGitHub, summary: str, *comments: Comment, commit: str = HEAD) -> Published:
    return run(fake, lambda gh: publish_review(gh, PR, commit=commit, summary=summary, comments=comments))


def test_first_run_posts_one_review_carrying_the_summary_and_the_inline_comments(github: FakeGitHub) -> None:
    published = publish(github, "Two problems.", UNUSED, SHADOW)

    posts = github.calls("POST", "/pulls/7/reviews")
    assert len(posts) == 1
    sent = posts[0].json
    assert sent["commit_id"] == HEAD and sent["event"] == "COMMENT"
    assert sent["body"].startswith("Two problems.") and sent["body"].endswith(REVIEW_MARKER)
    assert [(c["path"], c["line"], c["side"]) for c in sent["comments"]] == [("app/core.py", 3, "RIGHT"), ("app/core.py", 2, "RIGHT")]
    assert sent["comments"][0]["body"] == f"**warning**: `y` is never used.\n\n<!-- seekgate:fp={UNUSED.fingerprint} -->"
    stored = github.pulls[7]
    assert len(stored.reviews) == 1 and len(stored.comments) == 2
    assert published.created and published.posted == 2 and not published.fell_back
    assert published.review_id == stored.reviews[0]["id"]
    assert published.review_url.endswith(f"/octo/demo/pull/7#pullrequestreview-{published.review_id}")
    assert github.calls("PUT") == [] and github.calls("DELETE") == []


def test_rerun_with_the_same_comments_only_updates_the_summary(github: FakeGitHub) -> None:
    first = publish(github, "Two problems.", UNUSED, SHADOW)
    again = publish(github, "Still two problems.", SHADOW, UNUSED)

    assert len(github.calls("POST", "/reviews")) == 1
    puts = github.calls("PUT")
    assert [p.path for p in puts] == [f"/repos/octo/demo/pulls/7/reviews/{first.review_id}"]
    assert puts[0].json == {"body": f"Still two problems.\n\n{REVIEW_MARKER}"}
    stored = github.pulls[7]
    assert len(stored.reviews) == 1 and len(stored.comments) == 2
    assert stored.reviews[0]["body"].startswith("Still two problems.")
    assert (again.created, again.posted, again.kept, again.deleted) == (False, 0, 2, 0)
    assert again.review_id == first.review_id and again.followup_id is None


def test_rerun_deletes_the_fixed_comment_keeps_the_unchanged_one_and_posts_only_the_new(github: FakeGitHub) -> None:
    publish(github, "Two problems.", UNUSED, SHADOW)
    shadow_id = next(c["id"] for c in github.pulls[7].comments if c["line"] == 2)
    unused_id = next(c["id"] for c in github.pulls[7].comments if c["line"] == 3)

    again = publish(github, "One old, one new.", UNUSED, TYPO)

    assert [d.path for d in github.calls("DELETE")] == [f"/repos/octo/demo/pulls/comments/{shadow_id}"]
    posts = github.calls("POST", "/reviews")
    assert len(posts) == 2
    followup = posts[1].json
    assert [(c["path"], c["line"]) for c in followup["comments"]] == [("docs/notes.md", 2)]
    assert FOLLOWUP_MARKER in followup["body"] and REVIEW_MARKER not in followup["body"]
    assert followup["body"].startswith(f"seekgate: 1 new comment on {HEAD[:7]};")
    remaining = {c["id"]: c["path"] for c in github.pulls[7].comments}
    assert unused_id in remaining and shadow_id not in remaining and sorted(remaining.values()) == ["app/core.py", "docs/notes.md"]
    assert (again.posted, again.kept, again.deleted) == (1, 1, 1)
    assert again.followup_id == github.pulls[7].reviews[1]["id"]

    third = publish(github, "Same again.", UNUSED, TYPO)
    assert len(github.calls("POST", "/reviews")) == 2, "the follow-up review must not be taken for the main one"
    assert (third.posted, third.kept, third.deleted) == (0, 2, 0)


def test_a_comment_whose_line_moved_is_kept_but_one_github_marks_outdated_is_replaced(github: FakeGitHub) -> None:
    publish(github, "One problem.", UNUSED, SHADOW)
    github.pulls[7].head_sha = "c" * 40  # a push: the same findings come back on other lines
    unused_id, shadow_id = (c["id"] for c in github.pulls[7].comments)
    github.pulls[7].comments[1]["line"] = None  # GitHub's answer once a comment's line left the diff

    moved_unused = Comment(path=UNUSED.path, line=24, severity=UNUSED.severity, body=UNUSED.body)
    moved_shadow = Comment(path=SHADOW.path, line=3, severity=SHADOW.severity, body=SHADOW.body)
    again = publish(github, "Moved.", moved_unused, moved_shadow, commit="c" * 40)

    assert [d.path for d in github.calls("DELETE")] == [f"/repos/octo/demo/pulls/comments/{shadow_id}"]
    assert [(c["path"], c["line"]) for c in github.calls("POST", "/reviews")[1].json["comments"]] == [("app/core.py", 3)]
    assert unused_id in {c["id"] for c in github.pulls[7].comments}
    assert (again.kept, again.posted, again.deleted) == (1, 1, 1)


def test_a_comment_someone_already_deleted_counts_as_deleted(github: FakeGitHub) -> None:
    publish(github, "One problem.", UNUSED)
    github.fail_next(1, 404, method="DELETE")

    again = publish(github, "Fixed.")

    assert len(github.calls("DELETE")) == 1 and again.deleted == 1


def test_the_same_comment_twice_is_posted_once(github: FakeGitHub) -> None:
    published = publish(github, "Dup.", UNUSED, UNUSED, SHADOW)
    assert len(github.calls("POST", "/reviews")[0].json["comments"]) == 2 and published.posted == 2


def test_the_fake_refuses_a_whole_review_when_one_comment_is_outside_the_diff(github: FakeGitHub) -> None:
    async def post(gh: GitHub) -> httpx.Response:
        payload = {"commit_id": HEAD, "body": "x", "event": "COMMENT", "comments": [
            {"path": "app/core.py", "line": 3, "side": "RIGHT", "body": "fine"},
            {"path": "app/core.py", "line": 15, "side": "RIGHT", "body": "not shown"},
        ]}  # fmt: skip
        return await gh.request("POST", PR.path + "/reviews", json=payload)

    with pytest.raises(GitHubError) as caught:
        run(github, post)

    assert str(caught.value) == "POST /repos/octo/demo/pulls/7/reviews: 422: Unprocessable Entity: Line could not be resolved"
    assert caught.value.status == 422 and caught.value.errors == ("Line could not be resolved",)
    assert github.pulls[7].reviews == [] and github.pulls[7].comments == []


def test_the_fake_accepts_context_and_added_lines_and_refuses_removed_ones(github: FakeGitHub) -> None:
    async def post(gh: GitHub, path: str, line: int, side: str) -> int:
        payload = {"commit_id": HEAD, "body": "x", "event": "COMMENT", "comments": [{"path": path, "line": line, "side": side, "body": "b"}]}
        try:
            return (await gh.request("POST", PR.path + "/reviews", json=payload)).status_code
        except GitHubError as exc:
            assert exc.status is not None
            return exc.status

    cases = [("app/core.py", 1, "RIGHT"), ("app/core.py", 24, "RIGHT"), ("app/core.py", 2, "LEFT"), ("app/core.py", 7, "RIGHT"),
             ("app/core.py", 25, "RIGHT"), ("missing.py", 1, "RIGHT")]  # fmt: skip

    async def post_each(gh: GitHub) -> list[int]:
        return [await post(gh, *case) for case in cases]

    assert run(github, post_each) == [200, 200, 200, 422, 422, 422]
    assert len(github.pulls[7].reviews) == 3


def test_an_unresolvable_line_falls_back_to_listing_the_comments_in_the_review_body(github: FakeGitHub) -> None:
    published = publish(github, "Problems.", UNUSED, OUTSIDE)

    posts = github.calls("POST", "/reviews")
    assert len(posts) == 2 and len(posts[0].json["comments"]) == 2
    assert "comments" not in posts[1].json
    body = posts[1].json["body"]
    assert "- `app/core.py:3` warning `y` is never used." in body
    assert "- `app/core.py:15` error A line the diff does not show." in body
    assert body.startswith("Problems.") and body.endswith(REVIEW_MARKER)
    assert published.fell_back and published.created and published.posted == 0
    assert len(github.pulls[7].reviews) == 1 and github.pulls[7].comments == []


def test_an_unresolvable_line_on_a_rerun_is_listed_in_the_main_review_not_a_new_one(github: FakeGitHub) -> None:
    first = publish(github, "One problem.", UNUSED)
    again = publish(github, "Two problems.", UNUSED, OUTSIDE)

    assert len(github.pulls[7].reviews) == 1
    body = github.pulls[7].reviews[0]["body"]
    assert "`app/core.py:15` error" in body and "`app/core.py:3`" not in body
    assert again.fell_back and again.review_id == first.review_id and (again.kept, again.posted) == (1, 0)


def test_a_persons_comment_quoting_the_marker_is_never_deleted(github: FakeGitHub) -> None:
    publish(github, "One problem.", UNUSED)
    ours = github.pulls[7].comments[0]["id"]
    human = github.add_review(7, "I disagree.")
    quoted = github.add_comment(7, "app/core.py", 2, f"> {comment_body(SHADOW)}", review_id=human["id"])

    again = publish(github, "Nothing left.")

    assert [d.path for d in github.calls("DELETE")] == [f"/repos/octo/demo/pulls/comments/{ours}"]
    assert github.pulls[7].comments == [quoted] and again.deleted == 1


def test_the_previous_review_is_found_on_a_later_page(github: FakeGitHub) -> None:
    for n in range(130):
        github.add_review(7, f"human review {n}")
    first = publish(github, "Found late.", UNUSED)
    for n in range(110):
        github.add_comment(7, "app/core.py", 1, f"human comment {n}", review_id=github.pulls[7].reviews[0]["id"])

    again = publish(github, "Updated.", UNUSED)

    review_pages = [r.query for r in github.calls("GET", "/pulls/7/reviews")]
    assert {"per_page": "100", "page": "2"} in review_pages
    comment_pages = [r.query for r in github.calls("GET", "/pulls/7/comments")]
    assert comment_pages == [{"per_page": "100"}, {"per_page": "100", "page": "2"}]
    assert len(github.calls("POST", "/reviews")) == 1
    assert github.calls("PUT")[0].path.endswith(f"/reviews/{first.review_id}")
    assert (again.kept, again.posted, again.deleted) == (1, 0, 0)


def test_the_fake_paginates_with_a_link_header(github: FakeGitHub) -> None:
    for n in range(5):
        github.add_review(7, f"r{n}")

    async def pages(gh: GitHub) -> list[tuple[int, str]]:
        first = await gh.request("GET", PR.path + "/reviews", params={"per_page": 2})
        last = await gh.request("GET", first.links["last"]["url"])
        return [(len(first.json()), first.links["next"]["url"]), (len(last.json()), last.headers.get("Link", ""))]

    (first_count, next_url), (last_count, last_link) = run(github, pages)
    assert first_count == 2 and next_url.endswith("/repos/octo/demo/pulls/7/reviews?per_page=2&page=2")
    assert last_count == 1 and 'rel="next"' not in last_link and 'rel="prev"' in last_link


def test_a_bad_token_raises_naming_401_and_bad_credentials(github: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as caught:
        run(github, lambda gh: get_pull_request(gh, PR), token="ghs_wrong")
    assert caught.value.status == 401
    assert str(caught.value) == "GET /repos/octo/demo/pulls/7: 401: Bad credentials"
    assert len(github.requests) == 1, "a 401 is not retried"


def test_every_call_sends_auth_version_and_user_agent_headers(github: FakeGitHub) -> None:
    publish(github, "Hi.", UNUSED)
    run(github, lambda gh: pull_request_diff(gh, PR))

    assert len(github.requests) == 3
    for request in github.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert request.headers["User-Agent"] == "seekgate-review"
    assert [r.headers["Accept"] for r in github.requests] == ["application/vnd.github+json"] * 2 + [DIFF_MEDIA_TYPE]


def test_a_502_is_retried_and_then_succeeds(github: FakeGitHub) -> None:
    github.fail_next(2, 502)
    sleeps: list[float] = []

    pull = run(github, lambda gh: get_pull_request(gh, PR), sleeps=sleeps)

    assert (pull.number, pull.head_sha, pull.base_sha, pull.base_ref) == (7, HEAD, "b" * 40, "release")
    assert len(github.requests) == 3 and sleeps == [1.0, 2.0]


def test_retries_stop_after_three_and_raise_the_last_error(github: FakeGitHub) -> None:
    github.fail_next(4, 503)
    with pytest.raises(GitHubError) as caught:
        run(github, lambda gh: get_pull_request(gh, PR))
    assert str(caught.value) == "GET /repos/octo/demo/pulls/7: 503: Service Unavailable"
    assert len(github.requests) == 4


def test_a_rate_limit_waits_as_long_as_retry_after_says(github: FakeGitHub) -> None:
    github.fail_next(1, 429, headers={"Retry-After": "3"})
    github.fail_next(1, 403, headers={"Retry-After": "0"})
    sleeps: list[float] = []

    diff = run(github, lambda gh: pull_request_diff(gh, PR), sleeps=sleeps)

    assert diff == DIFF and sleeps == [3.0, 0.0] and len(github.requests) == 3


def test_a_403_that_is_not_a_rate_limit_is_not_retried(github: FakeGitHub) -> None:
    github.fail_next(1, 403, message="Resource not accessible by integration")
    with pytest.raises(GitHubError, match=r"403: Resource not accessible by integration$"):
        run(github, lambda gh: get_pull_request(gh, PR))
    assert len(github.requests) == 1


def test_an_exhausted_rate_limit_is_retried_but_a_wait_beyond_the_cap_fails_at_once(github: FakeGitHub) -> None:
    github.fail_next(1, 403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"})
    assert run(github, lambda gh: get_pull_request(gh, PR)).head_sha == HEAD

    github.requests.clear()
    github.fail_next(1, 429, headers={"Retry-After": "3600"})
    with pytest.raises(GitHubError, match="asks to wait 3600s"):
        run(github, lambda gh: get_pull_request(gh, PR))
    assert len(github.requests) == 1


def test_an_unknown_pull_request_raises_not_found(github: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as caught:
        run(github, lambda gh: get_pull_request(gh, PR.repository.pull(99)))
    assert str(caught.value) == "GET /repos/octo/demo/pulls/99: 404: Not Found"


def test_the_diff_media_type_returns_the_unified_diff(github: FakeGitHub) -> None:
    diff = run(github, lambda gh: pull_request_diff(gh, PR))
    assert diff == DIFF and "\x0c" in diff
    assert github.requests[0].headers["Accept"] == DIFF_MEDIA_TYPE


def test_a_reanchored_comment_says_where_it_came_from() -> None:
    moved = Comment(path="a.py", line=4, severity="error", body="Boom.", reanchored_from=40)
    assert comment_body(moved) == (
        f"**error**: Boom.\n\n_(moved from line 40, which the diff does not show)_\n\n<!-- seekgate:fp={moved.fingerprint} -->"
    )


def test_actions_context_reads_the_repository_api_url_and_pull_request_number(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 12, "pull_request": {"number": 12}}))
    env = {"GITHUB_REPOSITORY": "octo/demo", "GITHUB_API_URL": "https://ghe.example.com/api/v3/", "GITHUB_EVENT_PATH": str(event)}

    context = actions_context(env)

    assert context.repository == Repository("octo", "demo")
    assert context.api_url == "https://ghe.example.com/api/v3" and context.pr_number == 12


def test_actions_context_finds_the_number_of_an_issue_comment_on_a_pull_request(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"issue": {"number": 5, "pull_request": {"url": "u"}}}))
    assert actions_context({"GITHUB_EVENT_PATH": str(event)}).pr_number == 5
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    assert actions_context({"GITHUB_EVENT_PATH": str(event)}).pr_number is None


def test_actions_context_is_empty_outside_actions_and_rejects_malformed_input(tmp_path: Path) -> None:
    context = actions_context({})
    assert (context.repository, context.api_url, context.pr_number) == (None, None, None)
    with pytest.raises(InvalidRepository, match="'octo' is not of the form owner/name"):
        actions_context({"GITHUB_REPOSITORY": "octo"})
    broken = tmp_path / "event.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidEvent, match="GITHUB_EVENT_PATH"):
        actions_context({"GITHUB_EVENT_PATH": str(broken)})
