"""`seekgate review`: review a diff with the ci task and the linters; optionally post it to GitHub.

The report goes to stdout (Markdown or JSON), everything else to stderr. The exit status is the
policy's (seekgate.review.report): 0 pass, 1 fail, 2 unusable input or configuration, 3 incomplete.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import msgspec

from seekgate.asgi import prepare_process
from seekgate.children import run_child
from seekgate.cli.common import settings_from_args
from seekgate.review import report as out
from seekgate.review.diff import DiffError, git_diff, parse_diff
from seekgate.review.github import (
    GitHub,
    GitHubError,
    InvalidEvent,
    InvalidRepository,
    PullRef,
    Repository,
    actions_context,
    get_pull_request,
    publish_review,
    pull_request_diff,
)
from seekgate.review.model import ReviewModel, open_gateway
from seekgate.review.run import review_diff
from seekgate.review.types import Comment
from seekgate.settings import Settings, resolve_secret

__all__ = ["add_parser", "run"]

EPILOG = """\
exit status: 0 the review passed; 1 it failed review.fail_on or review.fail_on_lint;
2 the diff, a flag or the configuration is unusable; 3 the review is incomplete (a model call,
a linter or GitHub failed; what was reviewed is still printed and posted).

examples:
  seekgate review --base origin/main            the branch against main, in this checkout
  git diff | seekgate review -                  any diff on stdin
  seekgate review --github                      in GitHub Actions: the pull request's diff, posted back
"""


class UsageError(Exception):
    """The command cannot start: exit 2 with this message."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "review",
        help="review a diff with the local model and the linters; post it on a GitHub pull request",
        description="Review comments on a diff from the gateway's ci task, anchored to its new-file lines, beside linter findings.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("diff", nargs="?", metavar="DIFF", help="a diff file, or - for stdin (default: --base; with --github, the pull request's diff)")
    p.add_argument("--base", metavar="REF", help="review `git diff REF...HEAD` in --repo")
    p.add_argument("--head", metavar="REF", default="HEAD", help="the other end for --base (default: HEAD)")
    p.add_argument("--repo", metavar="DIR", default=".", help="the checkout git and the linters run in (default: .)")
    p.add_argument("--format", choices=["markdown", "json"], default="markdown", help="the report on stdout (default: markdown)")
    p.add_argument("--fail-on", choices=["error", "warning", "suggestion", "never"], help="review.fail_on: exit 1 on a comment this severe")
    p.add_argument("--no-lint", action="store_true", help="run no linters")
    p.add_argument("--no-model", action="store_true", help="linters only: no model call")
    p.add_argument("--gateway", metavar="URL", help="a running gateway's base URL (review.gateway; default: one built in-process)")
    p.add_argument("--model", help='a model alias (review.model; default "auto", the ci task\'s route)')
    p.add_argument("--max-comments", type=int, metavar="N", help="review.max_comments")
    p.add_argument("--github", action="store_true", help="post the review on the pull request (token from GITHUB_TOKEN)")
    p.add_argument("--pr", type=int, metavar="N", help="the pull request number (default: from the GitHub Actions event)")
    p.add_argument("--github-repo", metavar="OWNER/NAME", help="the repository (default: GITHUB_REPOSITORY)")
    p.add_argument("--verbose", action="store_true", help="the in-process gateway's logs at info level (stderr)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flags = {
        "review.gateway": args.gateway,
        "review.model": args.model,
        "review.max_comments": args.max_comments,
        "review.fail_on": args.fail_on,
        "server.log_level": "info" if args.verbose else "warning",
    }
    settings = settings_from_args(args, flags)
    prepare_process(settings)
    try:
        text, markdown, code = asyncio.run(_review(args, settings))
    except UsageError as exc:
        print(f"seekgate review: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):  # the job's summary page in GitHub Actions
        with open(summary, "a", encoding="utf-8") as f:
            f.write(markdown)
    return code


async def _review(args: argparse.Namespace, settings: Settings) -> tuple[str, str, int]:
    """The report as asked for (--format), as Markdown, and the exit status."""
    review = settings.review
    repo = Path(args.repo).resolve()
    if not repo.is_dir():
        raise UsageError(f"--repo {args.repo}: not a directory")
    github = _GitHubTarget.from_args(args, settings, os.environ) if args.github else None
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http:
        gh = github.client(http) if github else None
        try:
            text = await _diff_text(args, repo, gh, github)
            files = parse_diff(text)
        except DiffError as exc:
            raise UsageError(str(exc)) from None
        if args.no_model or not files:  # nothing for a model: no gateway to build
            report = await review_diff(files, review, None, root=None if args.no_lint else repo)
        else:
            async with open_gateway(settings) as gateway:
                model = ReviewModel(gateway, review)
                report = await review_diff(files, review, model, root=None if args.no_lint else repo)
        verdict = out.judge(report, review)
        posted: dict[str, object] | None = None
        if gh is not None and github is not None:
            local = await _commit_of(repo, args.head) if args.base else None
            posted, problem = await github.publish(gh, out.to_markdown(report, verdict, inline=False), report.comments, local)
            if problem:
                verdict = out.judge(report, review, extra_failures=[problem])
    markdown = out.to_markdown(report, verdict)
    text = out.to_json(report, verdict, github=posted).decode() + "\n" if args.format == "json" else markdown
    return text, markdown, verdict.exit_code


async def _commit_of(repo: Path, ref: str) -> str | None:
    try:
        done = await run_child(["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=repo)
    except OSError:
        return None
    return done.stdout.decode().strip() if done.returncode == 0 else None


async def _diff_text(args: argparse.Namespace, repo: Path, gh: GitHub | None, github: _GitHubTarget | None) -> str:
    if args.base and args.diff:
        raise UsageError("give a diff file or --base, not both")
    if args.base:
        return await git_diff(repo, args.base, args.head)
    if args.diff == "-":  # only when asked: an empty stdin in a CI step must not pass as an empty diff
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if args.diff:
        try:
            return Path(args.diff).read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read the diff {args.diff}: {exc.strerror}") from None
    if github is not None and gh is not None:
        return await github.diff(gh)
    raise UsageError("no diff: give --base REF, a diff file, - for stdin, or --github for the pull request's diff")


class _GitHubTarget:
    """The pull request a review is posted on, from flags, the settings and the Actions context."""

    def __init__(self, token: str, api_url: str, ref: PullRef) -> None:
        self.token, self.api_url, self.ref = token, api_url, ref

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, env: Mapping[str, str]) -> _GitHubTarget:
        try:
            context = actions_context(env)
        except (InvalidEvent, InvalidRepository) as exc:
            raise UsageError(str(exc)) from None
        token = resolve_secret(settings.review.github_token)
        if not token:
            raise UsageError(f"--github needs a token: set {(settings.review.github_token or 'env::GITHUB_TOKEN')[5:]}")
        try:
            repository = Repository.parse(args.github_repo) if args.github_repo else context.repository
        except InvalidRepository as exc:
            raise UsageError(f"--github-repo: {exc}") from None
        if repository is None:
            raise UsageError("--github needs the repository: --github-repo OWNER/NAME, or GITHUB_REPOSITORY")
        number = args.pr or context.pr_number
        if not number:
            raise UsageError("--github needs the pull request: --pr N, or run on a pull_request event (GITHUB_EVENT_PATH)")
        return cls(token, context.api_url or settings.review.github_api_url, repository.pull(number))

    def client(self, http: httpx.AsyncClient) -> GitHub:
        return GitHub(self.token, client=http, api_url=self.api_url)

    async def diff(self, gh: GitHub) -> str:
        try:
            return await pull_request_diff(gh, self.ref)
        except GitHubError as exc:
            raise UsageError(f"cannot read the pull request's diff: {exc}") from None

    async def publish(
        self, gh: GitHub, summary: str, comments: tuple[Comment, ...], reviewed: str | None
    ) -> tuple[dict[str, object] | None, str | None]:
        """Post the review on the pull request's head; (what was done, None), or (None, why it
        failed). `reviewed`: the commit a local diff ended at, checked against that head."""
        try:
            pr = await get_pull_request(gh, self.ref)
            if reviewed is not None and reviewed != pr.head_sha:
                print(
                    f"seekgate review: warning: the reviewed commit {reviewed[:12]} is not the pull request's head "
                    f"{pr.head_sha[:12]}, so comment lines may not match GitHub's; check out the head, or leave out "
                    "--base to review the pull request's own diff",
                    file=sys.stderr,
                )
            done = await publish_review(gh, self.ref, commit=pr.head_sha, summary=summary, comments=comments)
        except GitHubError as exc:
            print(f"seekgate review: posting to GitHub failed: {exc}", file=sys.stderr)
            return None, f"GitHub: {exc}"
        print(
            f"seekgate review: {'posted' if done.created else 'updated'} {done.review_url}: {done.posted} new inline comments, "
            f"{done.kept} kept, {done.deleted} deleted" + (" (GitHub refused them inline; listed in the body)" if done.fell_back else ""),
            file=sys.stderr,
        )
        return msgspec.to_builtins(done), None
