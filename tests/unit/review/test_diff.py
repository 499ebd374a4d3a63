"""Diff parsing and line mapping on diffs that git itself writes."""

import asyncio
import subprocess
from pathlib import Path

import pytest

from seekgate.review.diff import DiffError, git_diff, parse_diff


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose `feature` branch adds, modifies, renames (with an edit), deletes,
    changes a binary file, and edits a file that ends without a newline."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "app.py").write_text("".join(f"line {i}\n" for i in range(1, 31)))
    (tmp_path / "old_name.py").write_text("a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\nh = 8\n")
    (tmp_path / "same.txt").write_text("unchanged content\n" * 5)
    (tmp_path / "gone.txt").write_text("bye\nfor now\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")
    (tmp_path / "tail.txt").write_text("first\nlast without newline")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "feature")
    lines = [f"line {i}\n" for i in range(1, 31)]
    lines[1] = "line 2 changed\n"  # a change near the top
    lines[24:25] = ["line 25\n", "inserted A\n", "inserted B\n"]  # two lines added further down
    (tmp_path / "app.py").write_text("".join(lines))
    git(tmp_path, "mv", "old_name.py", "new_name.py")
    (tmp_path / "new_name.py").write_text("a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 70\nh = 8\n")
    (tmp_path / "moved").mkdir()
    git(tmp_path, "mv", "same.txt", "moved/same.txt")
    git(tmp_path, "rm", "-q", "gone.txt")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x02")
    (tmp_path / "tail.txt").write_text("first\nlast without newline, edited")
    (tmp_path / "added.md").write_text("# New\n\nA new page.\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "feature")
    return tmp_path


def test_a_git_diff_of_several_kinds_of_change_reads_file_by_file(repo: Path):
    files = {f.path: f for f in parse_diff(asyncio.run(git_diff(repo, "main")))}
    assert set(files) == {"app.py", "new_name.py", "moved/same.txt", "gone.txt", "logo.png", "tail.txt", "added.md"}
    assert (files["new_name.py"].status, files["new_name.py"].old_path) == ("renamed", "old_name.py")
    assert (files["moved/same.txt"].status, files["moved/same.txt"].hunks) == ("renamed", ())
    assert (files["gone.txt"].status, files["gone.txt"].old_path, files["gone.txt"].shown) == ("deleted", "gone.txt", frozenset())
    assert files["logo.png"].binary and files["logo.png"].hunks == ()
    assert (files["added.md"].status, files["added.md"].old_path, files["added.md"].added) == ("added", None, frozenset({1, 2, 3}))


def test_new_file_line_numbers_follow_the_hunks(repo: Path):
    app = next(f for f in parse_diff(asyncio.run(git_diff(repo, "main"))) if f.path == "app.py")
    assert [(h.new_start, h.new_count) for h in app.hunks] == [(1, 5), (23, 8)]
    assert app.added == {2, 26, 27}
    # context lines are shown (a comment may name them), removed lines have no new number
    assert {1, 3, 4, 5, 23, 25, 28, 30} <= app.shown and 6 not in app.shown and 22 not in app.shown
    removed = [line for line in app.hunks[0].lines if line.kind == "-"]
    assert [(r.old, r.new, r.text) for r in removed] == [(2, None, "line 2")]
    texts = {line.new: line.text for h in app.hunks for line in h.lines if line.new}
    assert (texts[2], texts[26], texts[27]) == ("line 2 changed", "inserted A", "inserted B")


def test_a_missing_newline_at_end_of_file_marks_the_line_and_adds_no_line(repo: Path):
    tail = next(f for f in parse_diff(asyncio.run(git_diff(repo, "main"))) if f.path == "tail.txt")
    lines = tail.hunks[0].lines
    assert [(ln.kind, ln.text, ln.no_newline) for ln in lines] == [
        (" ", "first", False),
        ("-", "last without newline", True),
        ("+", "last without newline, edited", True),
    ]
    assert tail.shown == {1, 2} and tail.added == {2}


def test_a_plain_diff_u_without_git_headers_reads_too(tmp_path: Path):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "b.txt").write_text("one\n2\nthree\nfour\n")
    out = subprocess.run(["diff", "-u", "a.txt", "b.txt"], check=False, cwd=tmp_path, capture_output=True, text=True).stdout
    (f,) = parse_diff(out)
    assert (f.path, f.status, f.added) == ("b.txt", "modified", frozenset({2, 4}))


def test_form_feeds_and_carriage_returns_inside_lines_do_not_split_them(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "f.py").write_bytes(b"a = 1\r\nb = 2\r\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "x")
    (tmp_path / "f.py").write_bytes(b"a = 1\r\n\x0c# section\x1c two\r\nb = 3\r\n")
    git(tmp_path, "commit", "-qam", "x")
    (f,) = parse_diff(asyncio.run(git_diff(tmp_path, "main")))
    assert [(ln.kind, ln.new, ln.text) for ln in f.hunks[0].lines if ln.kind == "+"] == [("+", 2, "\x0c# section\x1c two"), ("+", 3, "b = 3")]


def test_empty_input_is_an_empty_diff_and_prose_is_an_error():
    assert parse_diff("") == () and parse_diff("\n  \n") == ()
    with pytest.raises(DiffError, match="no file diff"):
        parse_diff("this is not a diff\njust words\n")
    with pytest.raises(DiffError, match="not a unified diff"):
        parse_diff("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n?garbage\n")


def test_git_diff_names_the_bad_ref(repo: Path):
    with pytest.raises(DiffError, match="no-such-branch"):
        asyncio.run(git_diff(repo, "no-such-branch"))


def test_quoted_names_spaces_symlinks_mode_changes_and_empty_files(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "with space.py").write_text("x\n")
    (tmp_path / "ä.py").write_text("y\n")
    (tmp_path / "run.sh").write_text("echo hi\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "f")
    (tmp_path / "with space.py").write_text("x2\n")
    (tmp_path / "ä.py").write_text("y2\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "link").symlink_to("run.sh")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "f")
    text = asyncio.run(git_diff(tmp_path, "main"))
    assert '"a/\\303\\244.py"' in text  # git quotes the name; the review must not
    files = {f.path: f for f in parse_diff(text)}
    assert set(files) == {"with space.py", "ä.py", "run.sh", "empty.txt", "link"}
    assert files["ä.py"].old_path == "ä.py" and files["ä.py"].added == {1}
    assert files["with space.py"].added == {1}
    assert (files["link"].link, files["run.sh"].shown, files["empty.txt"].hunks) == ("symlink", frozenset(), ())


def test_a_submodule_bump_is_marked_as_one():
    diff = (
        "diff --git a/vendor/lib b/vendor/lib\nindex 1111111..2222222 160000\n--- a/vendor/lib\n+++ b/vendor/lib\n"
        "@@ -1 +1 @@\n-Subproject commit 1111111111111111111111111111111111111111\n"
        "+Subproject commit 2222222222222222222222222222222222222222\n"
    )
    (f,) = parse_diff(diff)
    assert (f.path, f.link) == ("vendor/lib", "submodule")
