"""The GitHub side of `seekgate review`: read a pull request, publish one review, keep it tidy.

The bot speaks GitHub's REST API (version 2022-11-28) over an injected `httpx.AsyncClient`. A run
must not pile up reviews: the review it first wrote carries a hidden marker and holds the summary,
which later runs edit in place; every inline comment carries its `Comment.fingerprint`, so a re-run
keeps what still applies, deletes what was fixed and posts only what is new.

Rate limits and gateway hiccups are retried a bounded number of times; anything else raises
`GitHubError` at once, naming the call, the status and GitHub's own message.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import msgspec

from seekgate.review.types import Comment

__all__ = [
    "API_URL", "DIFF_MEDIA_TYPE", "FOLLOWUP_MARKER", "REVIEW_MARKER", "ActionsContext", "GitHub",
    "GitHubError", "InvalidEvent", "InvalidRepository", "Published", "PullRef", "PullRequest", "Repository",
    "actions_context", "comment_body", "get_pull_request", "publish_review", "pull_request_diff"
]

API_URL = "https://api.github.com"
JSON_MEDIA_TYPE = "application/vnd.github+json"
DIFF_MEDIA_TYPE = "application/vnd.github.diff"
API_VERSION = "2022-11-28"
USER_AGENT = "seekgate-review"

REVIEW_MARKER = "<!-- seekgate-review -->"
"""In the body of the one review that holds the summary: how a re-run finds it."""
FOLLOWUP_MARKER = "<!-- seekgate-review:followup -->"
"""In the body of a later review that only carries new inline comments; never taken as the main one."""
_FINGERPRINT = re.compile(r"<!-- seekgate:fp=([0-9a-f]+) -->")
_SLUG = re.compile(r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100})$")
_RETRIED_5XX = frozenset({502, 503, 504})
_SPACE = re.compile(r"\s+")

Sleep = Callable[[float], Awaitable[None]]
JSONObject = dict[str, Any]
_T = TypeVar("_T")


class GitHubError(Exception):
    """A GitHub call failed: `call` is "METHOD /path", `status` None when no answer came at all."""

    def __init__(self, call: str, status: int | None, message: str, errors: Sequence[str] = ()) -> None:
        text = f"{call}: {status}: {message}" if status is not None else f"{call}: {message}"
        super().__init__(text + "".join(f": {e}" for e in errors))
        self.call = call
        self.status = status
        self.message = message
        self.errors = tuple(errors)


class InvalidRepository(ValueError):
    """A repository slug is not "owner/name"."""


class InvalidEvent(ValueError):
    """GITHUB_EVENT_PATH names a file that cannot be read as JSON."""


class Repository(msgspec.Struct, frozen=True):
    owner: str
    name: str

    @classmethod
    def parse(cls, slug: str) -> Repository:
        match = _SLUG.match(slug.strip())
        if match is None or match["name"] in (".", ".."):
            raise InvalidRepository(f"repository {slug!r} is not of the form owner/name")
        return cls(match["owner"], match["name"])

    def pull(self, number: int) -> PullRef:
        return PullRef(self, number)


class PullRef(msgspec.Struct, frozen=True):
    repository: Repository
    number: int

    @property
    def path(self) -> str:
        """The API path every pull-request endpoint hangs off."""
        return f"/repos/{self.repository.owner}/{self.repository.name}/pulls/{self.number}"


class PullRequest(msgspec.Struct, frozen=True, kw_only=True):
    ref: PullRef
    head_sha: str
    """The commit a review is anchored to (`commit_id`)."""
    base_sha: str
    base_ref: str

    @property
    def number(self) -> int:
        return self.ref.number


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """What `publish_review` did, for the CLI to report."""

    review_id: int
    """The main review: the one that holds the summary."""
    review_url: str
    created: bool
    """True when this run wrote the main review; False when it updated an earlier run's."""
    posted: int = 0
    """Inline comments posted by this run."""
    kept: int = 0
    """Inline comments of earlier runs left as they were because they still apply."""
    deleted: int = 0
    """Inline comments of earlier runs deleted because their problem is gone."""
    fell_back: bool = False
    """GitHub refused the inline comments (422), so they were listed in the main review's body."""
    followup_id: int | None = None
    """The review that carried this run's new inline comments, on a re-run."""


class ActionsContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a GitHub Actions run says about where it runs; each field None when not given."""

    repository: Repository | None
    api_url: str | None
    pr_number: int | None


class GitHub:
    """A GitHub REST client: auth and version headers, bounded retries, pagination.

    Pass `client` to share a connection pool (and to point tests at a fake); without one, the
    instance makes its own and closes it in `aclose`. `sleep` and `max_wait` bound how long a
    rate limit may hold a CI job up."""

    def __init__(
        self, token: str, *, client: httpx.AsyncClient | None = None, api_url: str = API_URL,
        retries: int = 3, max_wait: float = 60.0, sleep: Sleep = asyncio.sleep,
    ) -> None:  # fmt: skip
        if not token:
            raise ValueError("a GitHub token is required")
        self._token = token
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        self.api_url = api_url.rstrip("/")
        self._retries = retries
        self._max_wait = max_wait
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def _url(self, path: str) -> str:
        if not path.startswith(("http://", "https://")):
            return self.api_url + path
        # A Link header is followed with the token attached: only ever to the API's own origin.
        link, api = httpx.URL(path), httpx.URL(self.api_url)
        if (link.scheme, link.netloc) != (api.scheme, api.netloc):
            raise GitHubError(f"GET {path}", None, f"refusing to follow a link away from {self.api_url}")
        return path

    async def request(
        self, method: str, path: str, *, json: object = None, params: Mapping[str, str | int] | None = None,
        accept: str = JSON_MEDIA_TYPE,
    ) -> httpx.Response:  # fmt: skip
        """One call, retried on rate limits and 502/503/504; raises GitHubError for any other failure."""
        url = self._url(path)
        call = f"{method} {httpx.URL(url).path}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept, "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": USER_AGENT}  # fmt: skip
        for attempt in range(self._retries + 1):
            try:
                response = await self._client.request(method, url, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                # Not retried: a POST that timed out may still have created the review.
                raise GitHubError(call, None, f"{type(exc).__name__}: {exc}") from exc
            if response.is_success:
                return response
            delay = _retry_delay(response, attempt)
            if delay is None or attempt == self._retries:
                raise _error(call, response)
            if delay > self._max_wait:
                raise _error(call, response, f"GitHub asks to wait {delay:.0f}s, longer than the {self._max_wait:.0f}s allowed")
            await self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def paginate(self, path: str) -> list[JSONObject]:
        """Every item of a list endpoint, 100 a page, following `Link: <...>; rel="next"`."""
        items: list[JSONObject] = []
        url: str | None = path
        params: dict[str, str | int] | None = {"per_page": 100}
        while url is not None:
            response = await self.request("GET", url, params=params)
            items.extend(item for item in _decode(response, f"GET {path}", list) if isinstance(item, dict))
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
        return items


def _decode(response: httpx.Response, call: str, kind: type[_T]) -> _T:
    try:
        data = response.json()
    except ValueError as exc:
        raise GitHubError(call, response.status_code, "the answer is not JSON") from exc
    if not isinstance(data, kind):
        raise GitHubError(call, response.status_code, f"expected a JSON {kind.__name__}, got {type(data).__name__}")
    return data


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_delay(response: httpx.Response, attempt: int) -> float | None:
    """How long to wait before trying again, or None when trying again cannot help."""
    status, headers = response.status_code, response.headers
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    limited = status == 429 or (status == 403 and (exhausted or "retry-after" in headers))
    if not limited and status not in _RETRIED_5XX:
        return None
    if (after := _seconds(headers.get("retry-after"))) is not None:
        return max(0.0, after)
    if exhausted and (reset := _seconds(headers.get("x-ratelimit-reset"))) is not None:
        return max(0.0, reset - time.time())
    # GitHub's advice for a secondary limit without headers is a minute; 5xx back off from 1s.
    return 60.0 if limited else float(2**attempt)


def _error(call: str, response: httpx.Response, note: str | None = None) -> GitHubError:
    message, errors = response.reason_phrase or "error", list[str]()
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = str(data.get("message") or message)
        if isinstance(found := data.get("errors"), list):
            errors = [_error_text(e) for e in found if e]
    elif response.text.strip():
        message = response.text.strip()[:200]
    return GitHubError(call, response.status_code, message, [*errors, *([note] if note else [])])


def _error_text(error: object) -> str:
    """GitHub's `errors` are strings or objects with resource/field/code and maybe a message."""
    if not isinstance(error, dict):
        return str(error)
    if error.get("message"):
        return str(error["message"])
    return " ".join(f"{k}={error[k]}" for k in ("resource", "field", "code") if k in error)


async def get_pull_request(gh: GitHub, ref: PullRef) -> PullRequest:
    data = _decode(await gh.request("GET", ref.path), f"GET {ref.path}", dict)
    try:
        return PullRequest(ref=ref, head_sha=data["head"]["sha"], base_sha=data["base"]["sha"], base_ref=data["base"]["ref"])
    except (KeyError, TypeError) as exc:
        raise GitHubError(f"GET {ref.path}", 200, f"the pull request lacks {exc}") from exc


async def pull_request_diff(gh: GitHub, ref: PullRef) -> str:
    """The pull request's unified diff, so a review needs no local checkout."""
    response = await gh.request("GET", ref.path, accept=DIFF_MEDIA_TYPE)
    return response.text


def comment_body(comment: Comment) -> str:
    """The Markdown of an inline comment, ending in the fingerprint marker a re-run looks for."""
    parts = [f"**{comment.severity}**: {comment.body.strip()}"]
    if comment.reanchored_from is not None:
        parts.append(f"_(moved from line {comment.reanchored_from}, which the diff does not show)_")
    parts.append(f"<!-- seekgate:fp={comment.fingerprint} -->")
    return "\n\n".join(parts)


def _main_body(summary: str, listed: Sequence[Comment] = ()) -> str:
    parts = [summary.strip()]
    if listed:
        lines = "\n".join(f"- `{c.path}:{c.line}` {c.severity} {_SPACE.sub(' ', c.body).strip()}" for c in listed)
        parts.append(f"GitHub could not place these comments on the diff, so they are listed here:\n\n{lines}")
    parts.append(REVIEW_MARKER)
    return "\n\n".join(parts)


def _followup_body(count: int, commit: str) -> str:
    noun = "comment" if count == 1 else "comments"
    return f"seekgate: {count} new {noun} on {commit[:7]}; the summary is in the first seekgate review.\n\n{FOLLOWUP_MARKER}"


class _Posted(msgspec.Struct, frozen=True):
    """An inline comment an earlier run posted."""

    id: int
    fingerprint: str
    line: int | None
    """None once GitHub marks the comment outdated: its line is gone from the diff."""


def _posted(data: JSONObject, review_ids: set[int]) -> _Posted | None:
    """The comment as one of ours, or None: it must carry our marker and sit in one of our reviews,
    so a person's comment that quotes the marker is never deleted."""
    found = _FINGERPRINT.findall(str(data.get("body") or ""))
    if not found or data.get("pull_request_review_id") not in review_ids:
        return None
    line = data.get("line")
    return _Posted(int(data["id"]), found[-1], line if isinstance(line, int) else None)


def _plan(posted: Sequence[_Posted], wanted: Sequence[Comment]) -> tuple[list[_Posted], list[_Posted], list[Comment]]:
    """Split into (keep, delete, post). A fingerprint ignores the line, so a comment is matched to
    one on the same line first, then to any still-visible one: it follows the code as it moves."""
    remaining, keep, pending = list(posted), list[_Posted](), list(wanted)
    for same_line in (True, False):
        unmatched = []
        for c in pending:
            match = next((p for p in remaining if p.fingerprint == c.fingerprint and p.line is not None
                          and (p.line == c.line or not same_line)), None)  # fmt: skip
            if match is None:
                unmatched.append(c)
            else:
                remaining.remove(match)
                keep.append(match)
        pending = unmatched
    return keep, remaining, pending


def _unique(comments: Sequence[Comment]) -> list[Comment]:
    seen: set[tuple[str, int]] = set()
    unique = []
    for comment in comments:
        if (key := (comment.fingerprint, comment.line)) not in seen:
            seen.add(key)
            unique.append(comment)
    return unique


async def _post_review(gh: GitHub, pr: PullRef, commit: str, body: str, comments: Sequence[Comment]) -> JSONObject:
    payload: JSONObject = {"commit_id": commit, "body": body, "event": "COMMENT"}
    if comments:
        payload["comments"] = [{"path": c.path, "line": c.line, "side": "RIGHT", "body": comment_body(c)} for c in comments]
    return _decode(await gh.request("POST", f"{pr.path}/reviews", json=payload), f"POST {pr.path}/reviews", dict)


async def publish_review(gh: GitHub, pr: PullRef, *, commit: str, summary: str, comments: Sequence[Comment]) -> Published:
    """Post the review, or bring an earlier run's up to date (see the module docstring).

    When GitHub cannot resolve a line (422), the comments go into the main review's body instead:
    GitHub does not say which line failed, so all of this run's new comments move together."""
    wanted = _unique(comments)
    reviews = await gh.paginate(f"{pr.path}/reviews")
    main = next((r for r in reviews if REVIEW_MARKER in str(r.get("body") or "")), None)
    if main is None:
        try:
            review = await _post_review(gh, pr, commit, _main_body(summary), wanted)
        except GitHubError as exc:
            if exc.status != 422 or not wanted:
                raise
            review = await _post_review(gh, pr, commit, _main_body(summary, wanted), ())
            return Published(review_id=review["id"], review_url=str(review.get("html_url", "")), created=True, fell_back=True)
        return Published(review_id=review["id"], review_url=str(review.get("html_url", "")), created=True, posted=len(wanted))

    ours = {r["id"] for r in reviews if any(m in str(r.get("body") or "") for m in (REVIEW_MARKER, FOLLOWUP_MARKER))}
    posted = [p for c in await gh.paginate(f"{pr.path}/comments") if (p := _posted(c, ours)) is not None]
    keep, stale, new = _plan(posted, wanted)
    listed: Sequence[Comment] = ()
    followup_id = None
    if new:
        try:
            followup_id = (await _post_review(gh, pr, commit, _followup_body(len(new), commit), new))["id"]
        except GitHubError as exc:
            if exc.status != 422:
                raise
            listed = new  # in the main body, rewritten each run, so a re-run does not list them twice
    path = f"{pr.path}/reviews/{main['id']}"
    review = _decode(await gh.request("PUT", path, json={"body": _main_body(summary, listed)}), f"PUT {path}", dict)
    for gone in stale:
        try:
            await gh.request("DELETE", f"/repos/{pr.repository.owner}/{pr.repository.name}/pulls/comments/{gone.id}")
        except GitHubError as exc:
            if exc.status != 404:  # already deleted by someone: the goal is reached
                raise
    return Published(
        review_id=review["id"], review_url=str(review.get("html_url", "")), created=False, posted=0 if listed else len(new),
        kept=len(keep), deleted=len(stale), fell_back=bool(listed), followup_id=followup_id,
    )  # fmt: skip


def actions_context(env: Mapping[str, str]) -> ActionsContext:
    """Read GITHUB_REPOSITORY, GITHUB_API_URL and the pull request number from GITHUB_EVENT_PATH.

    The number comes from `pull_request.number` (pull_request events), `number`, or
    `issue.number` when the issue is a pull request (issue_comment events)."""
    slug = env.get("GITHUB_REPOSITORY") or None
    event_path = env.get("GITHUB_EVENT_PATH") or None
    return ActionsContext(
        repository=Repository.parse(slug) if slug else None,
        api_url=(env.get("GITHUB_API_URL") or "").rstrip("/") or None,
        pr_number=_event_number(Path(event_path)) if event_path else None,
    )


def _event_number(path: Path) -> int | None:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidEvent(f"GITHUB_EVENT_PATH {path}: cannot read the event: {exc}") from exc
    if not isinstance(event, dict):
        return None
    candidates = [event.get("pull_request"), event]
    if isinstance(issue := event.get("issue"), dict) and issue.get("pull_request"):
        candidates.append(issue)
    for holder in candidates:
        if isinstance(holder, dict) and type(number := holder.get("number")) is int:
            return number
    return None
