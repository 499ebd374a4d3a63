"""A review as Markdown or JSON, and the exit-code policy.

Exit codes: 0 the review passed; 1 the policy failed it (a model comment at least as severe as
review.fail_on, or with review.fail_on_lint a linter finding on a line the diff adds); 2 the
input or configuration was unusable (see the CLI); 3 the review is incomplete (a part of the
diff could not be reviewed, a linter could not run, or posting to GitHub failed), which a CI job
can allow with `continue-on-error` when the model server is best-effort.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import msgspec

from seekgate.review.run import ReviewReport
from seekgate.review.types import SEVERITIES, Comment, LintFinding
from seekgate.settings import ReviewSettings

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "Verdict", "judge", "to_json", "to_markdown"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
LINT_LISTED = 50
"""Findings listed per linter in Markdown: a pull request's review body holds at most 65,536
characters, and a page of findings is read no further anyway."""


class Verdict(msgspec.Struct, frozen=True):
    exit_code: int
    result: str
    """"pass", "fail" or "incomplete"."""
    reasons: tuple[str, ...]


def judge(report: ReviewReport, review: ReviewSettings, *, extra_failures: Iterable[str] = ()) -> Verdict:
    reasons: list[str] = []
    if review.fail_on != "never":
        worst = SEVERITIES[: SEVERITIES.index(review.fail_on) + 1]
        hits = Counter(c.severity for c in report.comments if c.severity in worst)
        if hits:
            reasons.append(f"{_count(hits)} (review.fail_on = {review.fail_on})")
    gating = [f for f in report.lint.findings if f.in_diff] if report.lint else []
    if review.fail_on_lint and gating:
        reasons.append(f"{_plural(len(gating), 'linter finding')} on changed lines (review.fail_on_lint)")
    incomplete = [*report.failures, *(f"{name}: {why}" for name, why in (report.lint.not_run if report.lint else {}).items()),
                  *extra_failures]  # fmt: skip
    if reasons:
        return Verdict(EXIT_FAILED, "fail", tuple(reasons + incomplete))
    if incomplete:
        return Verdict(EXIT_INCOMPLETE, "incomplete", tuple(incomplete))
    return Verdict(EXIT_OK, "pass", ())


def to_json(report: ReviewReport, verdict: Verdict, *, github: dict[str, object] | None = None) -> bytes:
    """The whole review as one JSON object; `github` is what posting it did, when it was posted."""
    return msgspec.json.encode(
        {
            "result": verdict.result,
            "exit_code": verdict.exit_code,
            "reasons": verdict.reasons,
            "comments": [_comment_json(c) for c in report.comments],
            "lint": report.lint,
            "skipped": report.skipped,
            "failures": report.failures,
            "stats": report.stats,
            **({"github": github} if github is not None else {}),
        }
    )


def _comment_json(c: Comment) -> dict[str, object]:
    return {"path": c.path, "line": c.line, "severity": c.severity, "body": c.body, "reanchored_from": c.reanchored_from,
            "fingerprint": c.fingerprint}  # fmt: skip


def to_markdown(report: ReviewReport, verdict: Verdict, *, inline: bool = True) -> str:
    """The review for a terminal or a pull request. With `inline` False the model's comments are
    only counted (they are posted on their lines)."""
    out = ["## seekgate review", "", _headline(report), _details(report), ""]
    if inline and report.comments:
        for path in dict.fromkeys(c.path for c in report.comments):
            out += [f"### {path}", *(_comment_line(c) for c in report.comments if c.path == path), ""]
    if report.lint is not None and (report.lint.findings or report.lint.not_run or report.lint.ran):
        out += ["### Linters", *_lint_lines(report.lint.findings, report.lint.not_run, report.lint.ran), ""]
    if report.skipped or report.failures:
        out += ["### Not reviewed", *(f"- `{p}`: {why}" for p, why in report.skipped.items()), *(f"- {f}" for f in report.failures), ""]
    result = {"pass": "pass", "fail": "**fail**", "incomplete": "**incomplete**"}[verdict.result]
    out.append(f"Result: {result}" + (": " + "; ".join(verdict.reasons) if verdict.reasons else ""))
    return "\n".join(out) + "\n"


def _headline(report: ReviewReport) -> str:
    if not report.stats.files:
        return "No file of this diff went to the model." if report.skipped else "The diff is empty."
    if not report.comments:
        return f"No comments on {_plural(report.stats.files, 'file')}."
    counts = Counter(c.severity for c in report.comments)
    files = len({c.path for c in report.comments})
    return f"**{_plural(len(report.comments), 'comment')}** ({_count(counts)}) on {_plural(files, 'file')}."


def _details(report: ReviewReport) -> str:
    s = report.stats
    parts = []
    if s.models:
        parts.append("model " + ", ".join(s.models))
    if s.calls:
        parts.append(f"{_plural(s.hunks, 'hunk')} in {_plural(s.calls, 'call')}" + (f" ({s.cached} cached)" if s.cached else ""))
    if s.cut:
        parts.append(f"{_plural(s.cut, 'answer')} cut at review.max_tokens")
    if s.reanchored:
        parts.append(f"{_plural(s.reanchored, 'comment')} moved onto the diff")
    if s.dropped:
        why = ", ".join(f"{n} {reason}" for reason, n in s.dropped.items())
        parts.append(f"{sum(s.dropped.values())} dropped ({why})")
    parts.append(f"{s.seconds:.1f} s")
    return "<sub>" + " · ".join(parts) + "</sub>"


def _comment_line(c: Comment) -> str:
    moved = f" (moved from line {c.reanchored_from}, which the diff does not show)" if c.reanchored_from is not None else ""
    return f"- **{c.severity}** `{c.path}:{c.line}`{moved}: {c.body}"


def _lint_lines(findings: tuple[LintFinding, ...], not_run: dict[str, str], ran: Iterable[str]) -> list[str]:
    lines = []
    for name in dict.fromkeys([*ran, *(f.linter for f in findings)]):
        mine = [f for f in findings if f.linter == name]
        new = [f for f in mine if f.in_diff]
        lines.append(f"**{name}**: {_plural(len(new), 'finding')} on changed lines" + (
            f", {len(mine) - len(new)} elsewhere in these files" if len(mine) > len(new) else ""))  # fmt: skip
        for f in new[:LINT_LISTED]:
            where = f"{f.path}:{f.line}" + (f":{f.column}" if f.column else "")
            lines.append(f"- `{where}` {f.code + ' ' if f.code else ''}{f.message}")
        if len(new) > LINT_LISTED:
            lines.append(f"- and {len(new) - LINT_LISTED} more (all of them in --format json)")
    lines += [f"**{name}**: not run: {why}" for name, why in not_run.items()]
    return lines


def _count(counts: Counter[str]) -> str:
    return ", ".join(_plural(counts[s], s) for s in SEVERITIES if counts[s])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
