"""The exit-code policy and the report's two forms."""

import json

import msgspec
import pytest

from seekgate.review.lint import LintReport
from seekgate.review.report import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, judge, to_json, to_markdown
from seekgate.review.run import ReviewReport, Stats
from seekgate.review.types import Comment, LintFinding
from seekgate.settings import ReviewSettings


def comment(severity: str, line: int = 3, path: str = "a.py", moved: int | None = None) -> Comment:
    return Comment(path=path, line=line, severity=severity, body=f"A {severity} here.", reanchored_from=moved)


def lint(*findings: LintFinding, not_run: dict[str, str] | None = None) -> LintReport:
    return LintReport(findings=findings, not_run=not_run or {}, ran=("ruff",))


NEW = LintFinding(linter="ruff", path="a.py", line=1, column=8, code="F401", message="`json` imported but unused", in_diff=True)
OLD = LintFinding(linter="ruff", path="a.py", line=40, column=1, code="F811", message="redefinition", in_diff=False)


@pytest.mark.parametrize(
    ("fail_on", "severities", "code"),
    [
        ("error", ["warning", "suggestion"], EXIT_OK),
        ("error", ["error"], EXIT_FAILED),
        ("warning", ["warning"], EXIT_FAILED),
        ("warning", ["suggestion"], EXIT_OK),
        ("suggestion", ["suggestion"], EXIT_FAILED),
        ("never", ["error", "error"], EXIT_OK),
    ],
)
def test_the_exit_code_follows_fail_on(fail_on, severities, code):
    report = ReviewReport(comments=tuple(comment(s) for s in severities))
    assert judge(report, ReviewSettings(fail_on=fail_on)).exit_code == code


def test_only_linter_findings_on_changed_lines_fail_and_only_with_fail_on_lint():
    assert judge(ReviewReport(lint=lint(OLD)), ReviewSettings()).exit_code == EXIT_OK
    verdict = judge(ReviewReport(lint=lint(NEW, OLD)), ReviewSettings())
    assert (verdict.exit_code, verdict.reasons) == (EXIT_FAILED, ("1 linter finding on changed lines (review.fail_on_lint)",))
    assert judge(ReviewReport(lint=lint(NEW)), ReviewSettings(fail_on_lint=False)).exit_code == EXIT_OK


def test_parts_not_reviewed_and_linters_not_run_make_it_incomplete_unless_it_already_failed():
    partial = ReviewReport(failures=["a.py:10: the gateway answered 503: down"])
    assert judge(partial, ReviewSettings()).exit_code == EXIT_INCOMPLETE
    no_ruff = ReviewReport(lint=lint(not_run={"mypy": "mypy: executable not found on PATH"}))
    assert judge(no_ruff, ReviewSettings()).reasons == ("mypy: mypy: executable not found on PATH",)
    assert judge(ReviewReport(), ReviewSettings(), extra_failures=["GitHub: 502"]).exit_code == EXIT_INCOMPLETE
    both = judge(ReviewReport(comments=(comment("error"),), failures=["b.py:1: timeout"]), ReviewSettings())
    assert both.exit_code == EXIT_FAILED and both.reasons[1] == "b.py:1: timeout"


def test_markdown_groups_comments_by_file_and_lists_linters_and_what_was_skipped():
    report = ReviewReport(
        comments=(comment("error", 3), comment("warning", 9, moved=11), comment("suggestion", 2, path="b/c.py")),
        lint=lint(NEW, OLD),
        skipped={"logo.png": "binary"},
        stats=Stats(files=2, hunks=3, calls=2, models=["smollm2-135m"], reanchored=1, dropped={"line outside the diff": 2}, seconds=4.2),
    )
    text = to_markdown(report, judge(report, ReviewSettings()))
    assert "**3 comments** (1 error, 1 warning, 1 suggestion) on 2 files." in text
    assert "model smollm2-135m · 3 hunks in 2 calls · 1 comment moved onto the diff · 2 dropped (2 line outside the diff)" in text
    assert "### a.py\n- **error** `a.py:3`: A error here.\n- **warning** `a.py:9` (moved from line 11, which the diff does not show)" in text
    assert "### b/c.py\n- **suggestion** `b/c.py:2`" in text
    assert "**ruff**: 1 finding on changed lines, 1 elsewhere in these files\n- `a.py:1:8` F401 `json` imported but unused" in text
    assert "- `logo.png`: binary" in text
    assert text.rstrip().endswith("Result: **fail**: 1 error (review.fail_on = error); 1 linter finding on changed lines (review.fail_on_lint)")
    summary = to_markdown(report, judge(report, ReviewSettings()), inline=False)
    assert "### a.py" not in summary and "**3 comments**" in summary


def test_json_carries_every_comment_with_its_fingerprint_and_the_verdict():
    report = ReviewReport(comments=(comment("warning"),), lint=lint(NEW), stats=Stats(files=1, calls=1))
    data = json.loads(to_json(report, judge(report, ReviewSettings()), github={"review_id": 7}))
    assert (data["result"], data["exit_code"]) == ("fail", 1)
    assert data["comments"] == [
        {"path": "a.py", "line": 3, "severity": "warning", "body": "A warning here.", "reanchored_from": None,
         "fingerprint": comment("warning").fingerprint}
    ]  # fmt: skip
    assert data["lint"]["findings"][0] == msgspec.to_builtins(NEW) and data["github"] == {"review_id": 7}
    assert data["stats"]["calls"] == 1


def test_an_empty_diff_passes_and_says_so():
    report = ReviewReport()
    verdict = judge(report, ReviewSettings())
    assert verdict.exit_code == EXIT_OK and "The diff is empty." in to_markdown(report, verdict)


def test_markdown_lists_at_most_fifty_findings_a_linter_and_says_how_many_more():
    many = tuple(msgspec.structs.replace(NEW, line=n) for n in range(1, 131))
    report = ReviewReport(lint=lint(*many))
    text = to_markdown(report, judge(report, ReviewSettings()))
    assert text.count("F401 `json` imported but unused") == 50 and "- and 80 more (all of them in --format json)" in text
    assert len(json.loads(to_json(report, judge(report, ReviewSettings())))["lint"]["findings"]) == 130
