"""run_linters against real processes: the real ruff, and small Python scripts acting as linters."""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import os
import sys
import textwrap
import tomllib
from pathlib import Path

import msgspec
import pytest

from seekgate.review.lint import LintReport, run_linters
from seekgate.review.types import LintFinding
from seekgate.settings import ReviewLinter

PY = sys.executable


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    return root


def _script(tmp_path: Path, body: str) -> str:
    """A linter: a Python script kept outside the repository, so it is never linted itself."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    path = tools / f"linter{len(list(tools.iterdir()))}.py"
    path.write_text("import os, sys, time\n" + textwrap.dedent(body))
    return str(path)


def _run(linters: dict[str, ReviewLinter], root: Path, changed: dict[str, frozenset[int]], timeout_s: float = 60) -> LintReport:
    return asyncio.run(run_linters(linters, root, changed, timeout_s=timeout_s))


def _echo_linter(tmp_path: Path) -> str:
    """Reports one finding on line 1 of every file it is given, as it was given."""
    return _script(tmp_path, 'for f in sys.argv[1:]:\n    print(f"{f}:1:1: X001 seen")\n')


def _recorder(tmp_path: Path) -> tuple[str, Path]:
    """A linter that records the arguments it was given in a JSON file, and finds nothing."""
    record = tmp_path / "argv.json"
    return _script(tmp_path, f"open({str(record)!r}, 'w').write(__import__('json').dumps(sys.argv[1:]))\n"), record


def _sleeper(tmp_path: Path) -> tuple[str, Path, Path]:
    """A linter that writes its pid, sleeps 30 s, then writes a marker it only reaches if not killed."""
    pid_file, finished = tmp_path / "pid", tmp_path / "finished"
    body = f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\nopen({str(finished)!r}, 'w').close()\n"
    return _script(tmp_path, body), pid_file, finished


def _default_ruff() -> ReviewLinter:
    text = (importlib.resources.files("seekgate") / "default.toml").read_text()
    return msgspec.convert(tomllib.loads(text)["review"]["linters"]["ruff"], ReviewLinter)


def test_default_ruff_config_reports_findings_marking_those_on_added_lines(tmp_path: Path) -> None:
    root = _repo(
        tmp_path,
        {
            "ruff.toml": '[lint]\nselect = ["F"]\n',
            "pkg/mod.py": "import os\n\n\ndef f() -> int:\n    return undefined\n",
            "clean.py": "X = 1\n",
        },
    )
    report = _run({"ruff": _default_ruff()}, root, {"pkg/mod.py": frozenset({5}), "clean.py": frozenset({1})})

    assert report.not_run == {}
    assert report.ran == ("ruff",)
    assert [(f.path, f.line, f.column, f.code, f.in_diff) for f in report.findings] == [
        ("pkg/mod.py", 1, 8, "F401", False),
        ("pkg/mod.py", 5, 12, "F821", True),
    ]
    assert report.findings[0].message == "`os` imported but unused"  # ruff's `[*]` fixable mark is dropped
    assert all(f.linter == "ruff" for f in report.findings)


def test_venv_ruff_is_found_beside_the_interpreter_when_not_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _repo(tmp_path, {"ruff.toml": '[lint]\nselect = ["F"]\n', "a.py": "import os\n"})
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))

    report = _run({"ruff": _default_ruff()}, root, {"a.py": frozenset({1})})

    assert report.not_run == {}
    assert [(f.code, f.in_diff) for f in report.findings] == [("F401", True)]


def test_output_lines_are_parsed_normalised_and_limited_to_changed_files(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "", "sub/b.py": ""})
    script = _script(
        tmp_path,
        """
        print("a.py:3:5: X100 relative path")
        print("./a.py:4: no column and no code")
        print(os.path.abspath("sub/b.py") + ":2:7: Y200 absolute path")
        print("sub/./b.py:9:1: error: Name 'z' is not defined  [name-defined]")
        print("other.py:1:1: X300 a file the diff does not touch")
        print(os.path.abspath("..") + "/elsewhere.py:1:1: X400 outside the repository")
        print("Found 6 errors.")
        print("a.py: not a finding without a line")
        """,
    )
    changed = {"a.py": frozenset({3}), "sub/b.py": frozenset({1, 9})}

    report = _run({"fake": ReviewLinter(command=[PY, script])}, root, changed)

    assert report.not_run == {}
    assert report.findings == (
        LintFinding(linter="fake", path="a.py", line=3, column=5, code="X100", message="relative path", in_diff=True),
        LintFinding(linter="fake", path="a.py", line=4, column=None, code="", message="no column and no code"),
        LintFinding(linter="fake", path="sub/b.py", line=2, column=7, code="Y200", message="absolute path"),
        LintFinding(
            linter="fake",
            path="sub/b.py",
            line=9,
            column=1,
            code="name-defined",
            message="error: Name 'z' is not defined",
            in_diff=True,
        ),
    )


def test_only_existing_files_matching_the_patterns_are_passed(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "", "notes.md": "", "sub/c.pyi": "", "build/gen.py": ""})
    (tmp_path / "outside.py").write_text("")
    changed = {name: frozenset({1}) for name in ("a.py", "notes.md", "sub/c.pyi", "build/gen.py", "gone.py", "../outside.py")}
    patterns = ["*.py", "*.pyi", "!build/**"]

    script, record = _recorder(tmp_path)

    _run({"fake": ReviewLinter(command=[PY, script], patterns=patterns)}, root, changed)

    assert json.loads(record.read_text()) == ["a.py", "sub/c.pyi"]


def test_empty_patterns_pass_every_existing_changed_file(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "", "notes.md": ""})

    script, record = _recorder(tmp_path)

    _run({"fake": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset(), "notes.md": frozenset()})

    assert json.loads(record.read_text()) == ["a.py", "notes.md"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--before", "{files}", "--after"], ["--before", "./-dash.py", "a.py", "b.py", "--after"]),
        (["--flag"], ["--flag", "./-dash.py", "a.py", "b.py"]),
    ],
    ids=["placeholder-replaced", "files-appended"],
)
def test_files_replace_the_placeholder_or_are_appended(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    root = _repo(tmp_path, {"a.py": "", "b.py": "", "-dash.py": ""})
    script, record = _recorder(tmp_path)
    changed = {name: frozenset({1}) for name in ("b.py", "a.py", "-dash.py")}

    _run({"fake": ReviewLinter(command=[PY, script, *args])}, root, changed)

    # Sorted, and a file named like an option is passed so that it cannot be read as one.
    assert json.loads(record.read_text()) == expected


def test_dash_file_findings_map_back_to_its_changed_path(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"-dash.py": ""})

    report = _run({"echo": ReviewLinter(command=[PY, _echo_linter(tmp_path)])}, root, {"-dash.py": frozenset({1})})

    assert [(f.path, f.in_diff) for f in report.findings] == [("-dash.py", True)]


def test_missing_executable_is_reported_and_other_linters_still_run(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    linters = {
        "ghost": ReviewLinter(command=["seekgate-no-such-linter", "{files}"]),
        "echo": ReviewLinter(command=[PY, _echo_linter(tmp_path)]),
    }

    report = _run(linters, root, {"a.py": frozenset({1})})

    assert report.not_run == {"ghost": "seekgate-no-such-linter: executable not found on PATH"}
    assert report.ran == ("echo",)
    assert [f.linter for f in report.findings] == ["echo"]


def test_nonzero_exit_with_stderr_and_no_findings_is_a_crash_with_the_stderr_tail(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    script = _script(
        tmp_path,
        """
        for i in range(40):
            print(f"config line {i:02}", file=sys.stderr)
        print("Found 0 errors.")
        sys.exit(2)
        """,
    )

    report = _run({"broken": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset({1})})

    assert report.ran == ()
    assert report.findings == ()
    why = report.not_run["broken"]
    assert "exit 2" in why
    assert why.endswith("config line 39")
    assert "config line 00" not in why


def test_nonzero_exit_with_findings_is_a_normal_run(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    script = _script(tmp_path, 'print("a.py:1:1: X1 found")\nprint("warning: deprecated option", file=sys.stderr)\nsys.exit(1)\n')

    report = _run({"fake": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset({1})})

    assert report.not_run == {}
    assert report.ran == ("fake",)
    assert [f.code for f in report.findings] == ["X1"]


def test_nonzero_exit_with_findings_only_on_other_files_is_a_normal_run(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    script = _script(
        tmp_path, 'print("imported.py:1:1: X1 found")\nprint("note: following imports", file=sys.stderr)\nsys.exit(1)\n'
    )

    report = _run({"fake": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset({1})})

    assert report.not_run == {}
    assert report.ran == ("fake",)
    assert report.findings == ()


def test_linter_past_its_timeout_is_killed_and_reported(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    script, pid_file, _ = _sleeper(tmp_path)

    report = _run({"slow": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset({1})}, timeout_s=1)

    assert report.ran == ()
    assert report.not_run == {"slow": f"{PY}: timed out after 1 s and was killed"}
    # On a machine slow enough that the kill came before the script wrote its pid, there is no
    # process left to look for either.
    if pid_file.exists():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


def test_cancelling_the_run_kills_the_linter(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    script, pid_file, finished = _sleeper(tmp_path)

    async def scenario() -> None:
        task = asyncio.create_task(
            run_linters({"slow": ReviewLinter(command=[PY, script])}, root, {"a.py": frozenset({1})}, timeout_s=60)
        )
        while not (pid_file.exists() and pid_file.read_text()) and not task.done():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    assert not finished.exists()  # killed, not waited for
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_disabled_linter_does_not_run(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    marker = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(marker)!r}, 'w').close()\nprint('a.py:1:1: X1 found')\n")

    report = _run({"off": ReviewLinter(command=[PY, script], enabled=False)}, root, {"a.py": frozenset({1})})

    assert report == LintReport(findings=(), not_run={}, ran=())
    assert not marker.exists()


def test_linter_without_matching_files_does_not_run_and_is_no_error(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": ""})
    marker = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(marker)!r}, 'w').close()\n")
    linters = {
        "rust": ReviewLinter(command=[PY, script], patterns=["*.rs"]),
        "ghost": ReviewLinter(command=["seekgate-no-such-linter"], patterns=["*.rs"]),
    }

    report = _run(linters, root, {"a.py": frozenset({1})})

    assert report == LintReport(findings=(), not_run={}, ran=())
    assert not marker.exists()
