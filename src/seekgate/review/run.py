"""One review: pick the files worth a model's time, ask for comments call by call, place them on
the diff, and run the linters beside it.

A call the model refuses as too long is split in half and asked again; a call that fails for
any other reason is reported as a part not reviewed, and the rest of the review goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pathspec

from seekgate.review.anchor import anchor
from seekgate.review.diff import FileDiff
from seekgate.review.lint import LintReport, run_linters
from seekgate.review.model import ModelCallFailed, PromptTooLong, ReviewModel
from seekgate.review.prompt import INSTRUCTIONS, Batch, RawComment, estimate_tokens, parse_reply, plan_batches, reply_schema
from seekgate.review.types import Comment
from seekgate.settings import ReviewSettings

__all__ = ["PACK_ALLOWANCE", "PER_CALL", "ReviewReport", "Stats", "review_diff"]

PACK_ALLOWANCE = 400
"""Tokens kept for the prompt pack's system message, which the gateway adds (ci@v2 is ~250)."""
PER_CALL = 10
"""The most comments one call may write (the pack asks for at most ten)."""


class Stats(msgspec.Struct, kw_only=True):
    files: int = 0
    """Files the model reviewed."""
    hunks: int = 0
    calls: int = 0
    """Model calls made, counting the halves of a call split after the model refused it."""
    cached: int = 0
    """Calls the gateway answered from its cache."""
    cut: int = 0
    """Answers that stopped at review.max_tokens (their last comment is lost)."""
    models: list[str] = msgspec.field(default_factory=list)
    """The models that answered."""
    proposed: int = 0
    """Comments the model wrote, before they were checked against the diff."""
    reanchored: int = 0
    dropped: dict[str, int] = msgspec.field(default_factory=dict)
    seconds: float = 0.0


class ReviewReport(msgspec.Struct, kw_only=True):
    comments: tuple[Comment, ...] = ()
    lint: LintReport | None = None
    skipped: dict[str, str] = msgspec.field(default_factory=dict)
    """Files the model did not see, and why (binary, deleted, excluded, no content change)."""
    failures: list[str] = msgspec.field(default_factory=list)
    """Parts of the diff that could not be reviewed, and why."""
    stats: Stats = msgspec.field(default_factory=Stats)


async def review_diff(
    files: Sequence[FileDiff],
    review: ReviewSettings,
    model: ReviewModel | None,
    *,
    root: Path | None = None,
) -> ReviewReport:
    """Review `files`; with `model` None only the linters run, and with `root` None they do not
    (there is no checkout to run them in)."""
    started = time.perf_counter()
    report = ReviewReport()
    chosen = _choose(files, review.exclude, report.skipped)
    if model is not None and chosen:
        await _ask_model(chosen, review, model, report)
    if root is not None and review.linters:
        changed = {f.path: f.added for f in files if f.status != "deleted" and not f.binary and f.link is None}
        report.lint = await run_linters(review.linters, root, changed)
    report.stats.seconds = round(time.perf_counter() - started, 3)
    return report


def _choose(files: Sequence[FileDiff], exclude: Sequence[str], skipped: dict[str, str]) -> list[FileDiff]:
    excluded = pathspec.GitIgnoreSpec.from_lines(exclude)
    chosen = []
    for f in files:
        if f.link is not None:
            skipped[f.path] = f.link
        elif f.binary:
            skipped[f.path] = "binary"
        elif f.status == "deleted":
            skipped[f.path] = "deleted"
        elif excluded.match_file(f.path):
            skipped[f.path] = "excluded by review.exclude"
        elif not f.shown:
            skipped[f.path] = f"renamed from {f.old_path}, content unchanged" if f.status == "renamed" else "no content change"
        else:
            chosen.append(f)
    return chosen


async def _ask_model(files: list[FileDiff], review: ReviewSettings, model: ReviewModel, report: ReviewReport) -> None:
    budget = review.context_tokens - PACK_ALLOWANCE - estimate_tokens(INSTRUCTIONS)
    batches = plan_batches(files, budget)
    if review.max_calls and len(batches) > review.max_calls:
        _over_limit(batches[review.max_calls :], review.max_calls, report.skipped)
        batches = batches[: review.max_calls]
    report.stats.files, report.stats.hunks = len(files), sum(len(f.hunks) for f in files)
    limit = asyncio.Semaphore(review.concurrency)
    per_call = min(PER_CALL, review.max_comments)
    raw: list[list[RawComment]] = [[] for _ in batches]
    models: Counter[str] = Counter()

    async def run(i: int, batch: Batch) -> None:
        async with limit:
            raw[i].extend(await _ask(batch, model, per_call, report, models))

    async with asyncio.TaskGroup() as group:
        for i, batch in enumerate(batches):
            group.create_task(run(i, batch))
    flat = [c for part in raw for c in part]
    shown = {f.path: f.shown for f in files}
    placed = anchor(flat, shown, window=review.reanchor_lines, limit=review.max_comments)
    report.comments = placed.comments
    report.stats.proposed = len(flat)
    report.stats.reanchored, report.stats.dropped = placed.reanchored, placed.dropped
    report.stats.models = [name for name, _ in models.most_common()]


async def _ask(batch: Batch, model: ReviewModel, per_call: int, report: ReviewReport, models: Counter[str]) -> list[RawComment]:
    report.stats.calls += 1
    try:
        answer = await model.ask(batch.prompt(per_call), reply_schema(batch, per_call))
    except PromptTooLong as exc:
        halves = batch.halves()
        if halves is None:
            report.failures.append(f"{_where(batch)}: {exc}")
            return []
        first, second = await asyncio.gather(*(_ask(half, model, per_call, report, models) for half in halves))
        return first + second
    except ModelCallFailed as exc:
        report.failures.append(f"{_where(batch)}: {exc}")
        return []
    models[answer.model] += 1
    report.stats.cached += answer.cache == "hit"
    report.stats.cut += answer.cut
    return parse_reply(answer.text)


def _over_limit(rest: list[Batch], limit: int, skipped: dict[str, str]) -> None:
    """List the files whose hunks (some or all) fall past review.max_calls."""
    left = Counter(p.file.path for b in rest for p in b.pieces)  # a hunk cut in parts counts each part
    for path, n in left.items():
        skipped[path] = f"{n} {'hunk' if n == 1 else 'hunks or parts'} past review.max_calls = {limit}"


def _where(batch: Batch) -> str:
    first, last = batch.pieces[0], batch.pieces[-1]
    start = f"{first.file.path}:{first.hunk.new_start}"
    end = f"{last.file.path}:{last.hunk.new_start + max(last.hunk.new_count - 1, 0)}"
    return start if start == end else f"{start} to {end}"
