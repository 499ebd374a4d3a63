"""The review bot on this repository's own history: how fast diffs are read and planned, and what
whole reviews with a model take and produce.

    .venv/bin/python benchmarks/review.py                    # 40 commits, 5 reviews by the ci task's route (embedded)
    .venv/bin/python benchmarks/review.py --gateway http://127.0.0.1:8000 --model ds-coder-v2-lite
    options: --repo DIR, --commits N, --model-runs K (0: parsing only), --max-lines 400, --config FILE

The set: `git diff C~1 C` (the flags `seekgate review --base` uses) for each of the last N commits
of --repo, merge and root commits skipped.

Parsing and planning: per diff, parse_diff, the choice of files the model sees (run._choose, with
review.exclude) and plan_batches with the budget run.py gives a call (review.context_tokens minus
the pack allowance and the instructions). Printed: diffs, MB, files, hunks, planned calls, the
time per diff (p50, p90, max, in ms) and MB per second over all of them. One timed pass after one
warm-up diff; nothing is cached between diffs.

Reviews: K of those diffs with at most --max-lines changed lines, those touching .py files first,
newest first, each reviewed by run.review_diff as `seekgate review` does (no linters) through a
gateway built in this process (the ci task's route: the bundled SmolLM2 unless a listed model's
weights are present) or the one --gateway names. The in-process gateway runs on a temporary data
dir with the response cache off, so every call reaches the model; --concurrency (default 1, one
call at a time) makes a call's seconds its own rather than partly a wait for another call.
Printed per review: changed lines, files, hunks, calls, seconds, comments kept and proposed, moved
onto the diff (reanchored), dropped and why, parts not reviewed; then seconds per call (a call's
whole ask, retries included), and the share of proposed comments that named a line the diff does
not show (dropped as "line outside the diff", or reanchored). A backend that enforces the answer's
JSON schema (the embedded engine) can only name shown lines, so that share is 0 there; it is
printed to see it for other backends.
The header has the 1-minute load average at start and end: beside other work (a test suite) the
model's calls take many times longer, so compare figures from runs on an idle machine only.
This script asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from seekgate.asgi import prepare_process
from seekgate.review.diff import FileDiff, parse_diff
from seekgate.review.model import Answer, ReviewModel, open_gateway
from seekgate.review.prompt import INSTRUCTIONS, estimate_tokens, plan_batches
from seekgate.review.run import PACK_ALLOWANCE, ReviewReport, _choose, review_diff
from seekgate.settings import ReviewSettings, Settings, load_settings

OUTSIDE = "line outside the diff"


@dataclass(frozen=True)
class Commit:
    sha: str
    diff: str
    files: tuple[FileDiff, ...]
    chosen: tuple[FileDiff, ...]
    calls: int
    seconds: float

    @property
    def changed(self) -> int:
        return sum(line.kind != " " for f in self.files for h in f.hunks for line in h.lines)


class TimedModel(ReviewModel):
    """The review's model client, with the wall time of every call it makes."""

    def __init__(self, http: httpx.AsyncClient, review: ReviewSettings) -> None:
        super().__init__(http, review)
        self.seconds: list[float] = []

    async def ask(self, prompt: str, schema: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        try:
            return await super().ask(prompt, schema)
        finally:
            self.seconds.append(time.perf_counter() - started)


def git(repo: Path, *argv: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True)
    return done.stdout.decode("utf-8", errors="replace")


def diffs(repo: Path, n: int) -> tuple[list[tuple[str, str]], int]:
    """(sha, diff) of the last `n` commits with one parent, newest first; and how many were skipped."""
    out, skipped = [], 0
    for line in git(repo, "rev-list", f"--max-count={n}", "--parents", "HEAD").splitlines():
        sha, *parents = line.split()
        if len(parents) != 1:
            skipped += 1
            continue
        out.append((sha, git(repo, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames", f"{sha}~1", sha)))
    return out, skipped


def parse_and_plan(sha: str, text: str, review: ReviewSettings, budget: int) -> Commit:
    started = time.perf_counter()
    files = parse_diff(text)
    chosen = _choose(files, review.exclude, {})  # what review_diff does before it plans
    batches = plan_batches(chosen, budget)
    return Commit(sha, text, files, tuple(chosen), len(batches), time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def parsing(commits: list[Commit], skipped: int) -> list[str]:
    ms = [c.seconds * 1000 for c in commits]
    size = sum(len(c.diff.encode()) for c in commits)
    seconds = sum(c.seconds for c in commits)
    hunks = sum(len(f.hunks) for c in commits for f in c.files)
    rate = size / 1e6 / seconds if seconds else 0.0
    return [
        f"parsing and planning: {len(commits)} diffs ({skipped} merge/root commits skipped), {size / 1e6:.2f} MB, "
        + f"{sum(len(c.files) for c in commits)} files, {hunks} hunks, {sum(c.calls for c in commits)} planned calls",
        f"  {'per diff (ms)':<20} {'p50':>8} {'p90':>8} {'max':>8} {'MB/s':>8}",
        f"  {'parse+choose+plan':<20} {pct(ms, 0.5):>8.2f} {pct(ms, 0.9):>8.2f} {max(ms, default=0):>8.2f} {rate:>8.1f}",
    ]


def pick(commits: list[Commit], k: int, max_lines: int) -> list[Commit]:
    small = [c for c in commits if c.chosen and c.changed <= max_lines]
    small.sort(key=lambda c: not any(f.path.endswith(".py") for f in c.chosen))  # stable: newest first within
    return small[:k]


async def reviews(settings: Settings, picked: list[Commit]) -> tuple[list[tuple[Commit, ReviewReport]], list[float], float]:
    started = time.perf_counter()
    async with open_gateway(settings) as http:
        ready = time.perf_counter() - started
        model = TimedModel(http, settings.review)
        done = []
        for i, commit in enumerate(picked, 1):
            print(f"review {i}/{len(picked)}: {commit.sha[:10]}, {commit.changed} changed lines ...", file=sys.stderr, flush=True)
            done.append((commit, await review_diff(commit.files, settings.review, model, root=None)))
    return done, model.seconds, ready


def review_lines(done: list[tuple[Commit, ReviewReport]], per_call: list[float], ready: float, where: str) -> list[str]:
    out = [
        f"reviews: {len(done)} ({where}; gateway ready in {ready:.1f} s)",
        f"  {'commit':<10} {'lines':>5} {'files':>5} {'hunks':>5} {'calls':>5} {'seconds':>8} {'kept':>5} {'prop.':>5} "
        + f"{'moved':>5} {'failed':>6}  dropped",
    ]
    for commit, r in done:
        s = r.stats
        dropped = ", ".join(f"{n} {why}" for why, n in s.dropped.items()) or "-"
        out.append(f"  {commit.sha[:10]:<10} {commit.changed:>5} {s.files:>5} {s.hunks:>5} {s.calls:>5} {s.seconds:>8.1f} "
                   f"{len(r.comments):>5} {s.proposed:>5} {s.reanchored:>5} {len(r.failures):>6}  {dropped}")  # fmt: skip
    out += [f"  not reviewed, {c.sha[:10]}: {why}" for c, r in done for why in r.failures]
    proposed = sum(r.stats.proposed for _, r in done)
    outside = sum(r.stats.dropped.get(OUTSIDE, 0) + r.stats.reanchored for _, r in done)
    share = f"{outside / proposed:.0%}" if proposed else "n/a (none proposed)"
    out += [
        f"  seconds per call: p50 {pct(per_call, 0.5):.1f}, p90 {pct(per_call, 0.9):.1f}, max {max(per_call, default=0):.1f} "
        + f"({len(per_call)} calls, {sum(r.stats.cached for _, r in done)} from the cache)",
        f"  comments: {proposed} proposed, {sum(len(r.comments) for _, r in done)} kept; "
        + f"named a line outside the diff: {outside} of {proposed} proposed ({share})",
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(Path(__file__).parents[1]), help="the git checkout whose history is read")
    parser.add_argument("--commits", type=int, default=40, help="the last N commits (merge and root commits skipped)")
    parser.add_argument("--model-runs", type=int, default=5, help="reviews with a model (0: parsing only)")
    parser.add_argument("--max-lines", type=int, default=400, help="the most changed lines of a diff reviewed by a model")
    parser.add_argument("--gateway", help="a running gateway's base URL (review.gateway; default: one built in-process)")
    parser.add_argument("--model", help='a model alias (review.model; default "auto", the ci task\'s route)')
    parser.add_argument("--concurrency", type=int, default=1, help="review.concurrency: model calls in flight at once")
    parser.add_argument("--config", help="a seekgate config file (models and backends beyond the defaults)")
    args = parser.parse_args()

    load = os.getloadavg()[0]  # other work on the machine slows the model calls: shown beside the figures
    with tempfile.TemporaryDirectory(prefix="seekgate-bench-review-") as data:
        flags = {"review.gateway": args.gateway, "review.model": args.model}
        overrides = {"server.data_dir": data, "server.log_level": "warning", "cache.enabled": False,
                     "review.concurrency": args.concurrency, **{k: v for k, v in flags.items() if v is not None}}  # fmt: skip
        settings = load_settings(args.config, overrides=overrides)
        prepare_process(settings)
        review = settings.review
        budget = review.context_tokens - PACK_ALLOWANCE - estimate_tokens(INSTRUCTIONS)
        texts, skipped = diffs(Path(args.repo), args.commits)
        if texts:
            parse_and_plan(*texts[0], review, budget)  # warm-up: first-use costs out of the figures
        commits = [parse_and_plan(sha, text, review, budget) for sha, text in texts]
        lines = parsing(commits, skipped)
        lines.append(
            f"  call budget {budget} tokens (of review.context_tokens {review.context_tokens}); {len(review.exclude)} exclude patterns"
        )
        models = "none (--model-runs 0)"
        picked = pick(commits, args.model_runs, args.max_lines)
        if picked:
            done, per_call, ready = asyncio.run(reviews(settings, picked))
            models = ", ".join(dict.fromkeys(m for _, r in done for m in r.stats.models)) or "none answered"
            where = f"gateway {review.gateway}" if review.gateway else "in-process gateway, cache off"
            where += f", review.model {review.model}, concurrency {review.concurrency}"
            lines += review_lines(done, per_call, ready, where)
        elif args.model_runs:
            lines.append(f"reviews: no diff of at most {args.max_lines} changed lines with a file the model would see")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; answered by: {models}")  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
