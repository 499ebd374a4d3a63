"""Edits as patches: unified diffs and search/replace blocks, all-or-nothing, checked, verified, rolled back."""

import asyncio
import sys
from pathlib import Path

import msgspec
import pytest

from seekgate.mcp.patches import EditResult, FileDiff, apply_patch
from seekgate.mcp.workspace import Workspace

APP = """import os


def main():
    return os.getcwd()


def helper(x):
    y = x + 1
    return y


def other():
    return 2
"""
UTIL = "def shout(s):\n    return s.upper()\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src/app.py").write_text(APP)
    (root / "src/util.py").write_text(UTIL)
    (root / "notes.txt").write_text("alpha\nbeta\nalpha\n")
    return root


def _apply(root: Path, patch: str, *, writable: bool = True, verify: str | None = None, timeout_s: float = 120) -> EditResult:
    return asyncio.run(apply_patch(Workspace(root, writable=writable), patch, verify=verify, timeout_s=timeout_s))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- unified diffs -------------------------------------------------------------------------


def test_a_unified_diff_is_applied_and_its_diff_reported(root):
    patch = """--- a/src/util.py
+++ b/src/util.py
@@ -1,2 +1,2 @@
 def shout(s):
-    return s.upper()
+    return s.upper() + "!"
"""
    result = _apply(root, patch)
    assert result == EditResult(True, [FileDiff("src/util.py", patch)], None)
    assert (root / "src/util.py").read_text() == 'def shout(s):\n    return s.upper() + "!"\n'


def test_hunks_are_placed_by_content_when_their_line_numbers_are_wrong(root):
    patch = """```diff
--- a/src/app.py
+++ b/src/app.py
@@ -40,3 +40,3 @@ def helper(x):
 def helper(x):
-    y = x + 1
+    y = x + 2
     return y
```
"""
    result = _apply(root, patch)
    assert result.ok, result.error
    assert (root / "src/app.py").read_text() == APP.replace("x + 1", "x + 2")


def test_several_hunks_in_one_file_and_several_files_in_one_diff(root):
    patch = """diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,4 +1,5 @@
 import os
+import sys
 
 
 def main():
@@ -13,2 +14,2 @@ def helper(x):
 def other():
-    return 2
+    return sys.argv
diff --git a/notes.txt b/notes.txt
--- a/notes.txt
+++ b/notes.txt
@@ -1,2 +1,2 @@
 alpha
-beta
+gamma
"""
    result = _apply(root, patch)
    assert result.ok, result.error
    assert [c.path for c in result.changed] == ["src/app.py", "notes.txt"]
    assert (root / "src/app.py").read_text() == APP.replace("import os\n", "import os\nimport sys\n").replace(
        "return 2", "return sys.argv"
    )
    assert (root / "notes.txt").read_text() == "alpha\ngamma\nalpha\n"


def test_a_diff_from_dev_null_creates_a_file_and_its_folders(root):
    patch = """--- /dev/null
+++ b/pkg/new/mod.py
@@ -0,0 +1,2 @@
+def hello():
+    return "hi"
"""
    result = _apply(root, patch)
    assert result.ok, result.error
    assert (root / "pkg/new/mod.py").read_text() == 'def hello():\n    return "hi"\n'
    assert result.changed == [FileDiff("pkg/new/mod.py", patch)]


def test_when_a_hunk_matches_in_several_places_the_one_nearest_its_stated_line_wins(root):
    (root / "notes.txt").write_text("alpha\nbeta\n" * 5)
    result = _apply(root, "--- a/notes.txt\n+++ b/notes.txt\n@@ -6,2 +6,2 @@\n-alpha\n+ALPHA\n beta\n")
    assert result.ok, result.error
    assert (root / "notes.txt").read_text() == "alpha\nbeta\n" * 2 + "ALPHA\nbeta\n" + "alpha\nbeta\n" * 2


def test_context_that_differs_only_in_trailing_spaces_still_matches(root):
    (root / "notes.txt").write_text("alpha   \nbeta\n")
    result = _apply(root, "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+BETA\n")
    assert result.ok, result.error
    assert (root / "notes.txt").read_text() == "alpha   \nBETA\n"  # the file's own context line is kept


def test_a_hunk_whose_context_is_not_in_the_file_names_the_file_and_its_lines(root):
    before = _snapshot(root)
    result = _apply(
        root, "--- a/src/util.py\n+++ b/src/util.py\n@@ -1,2 +1,2 @@\n def whisper(s):\n-    return s.lower()\n+    return s\n"
    )
    assert not result.ok and result.changed == []
    assert "src/util.py" in result.error and "def whisper(s):" in result.error and "not found" in result.error
    assert _snapshot(root) == before


def test_a_multi_file_diff_is_all_or_nothing(root):
    before = _snapshot(root)
    patch = """--- a/notes.txt
+++ b/notes.txt
@@ -1,2 +1,2 @@
 alpha
-beta
+gamma
--- a/src/util.py
+++ b/src/util.py
@@ -1,1 +1,1 @@
-def no_such_line(s):
+def x(s):
"""
    result = _apply(root, patch)
    assert not result.ok and "src/util.py" in result.error
    assert _snapshot(root) == before


def test_deleting_a_file_and_escaping_the_root_are_refused(root):
    before = _snapshot(root)
    deleted = _apply(root, "--- a/notes.txt\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-alpha\n-beta\n-alpha\n")
    assert not deleted.ok and "does not delete" in deleted.error
    escaped = _apply(root, "../outside.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n")
    assert not escaped.ok and "outside the workspace" in escaped.error
    assert _snapshot(root) == before and not (root.parent / "outside.py").exists()


def test_text_that_is_no_patch_is_refused_with_the_formats(root):
    result = _apply(root, "Sure! I changed the function to return 3.")
    assert not result.ok and "no edit found" in result.error and "SEARCH" in result.error


# -- search/replace blocks -----------------------------------------------------------------


def test_search_replace_blocks_are_applied(root):
    patch = """src/util.py
```python
<<<<<<< SEARCH
    return s.upper()
=======
    return s.upper() + "!"
>>>>>>> REPLACE
```

src/app.py
```python
<<<<<<< SEARCH
def other():
    return 2
=======
def other():
    return 3
>>>>>>> REPLACE
```
"""
    result = _apply(root, patch)
    assert result.ok, result.error
    assert (root / "src/util.py").read_text() == 'def shout(s):\n    return s.upper() + "!"\n'
    assert (root / "src/app.py").read_text() == APP.replace("return 2", "return 3")
    assert [c.path for c in result.changed] == ["src/util.py", "src/app.py"]


@pytest.mark.parametrize("path_line", ["src/util.py", "`src/util.py`", "In `src/util.py`:", "### src/util.py", "**src/util.py**"])
def test_the_path_of_a_block_may_be_written_the_ways_models_write_it(root, path_line):
    result = _apply(
        root, f"{path_line}\n\n```python\n<<<<<<< SEARCH\n    return s.upper()\n=======\n    return s\n>>>>>>> REPLACE\n```\n"
    )
    assert result.ok, result.error
    assert (root / "src/util.py").read_text() == "def shout(s):\n    return s\n"


def test_consecutive_blocks_without_a_path_edit_the_same_file(root):
    patch = "notes.txt\n<<<<<<< SEARCH\nbeta\n=======\nBETA\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nBETA\nalpha\n=======\nBETA\nomega\n>>>>>>> REPLACE\n"
    result = _apply(root, patch)
    assert result.ok, result.error
    assert (root / "notes.txt").read_text() == "alpha\nBETA\nomega\n"
    assert [c.path for c in result.changed] == ["notes.txt"]


def test_an_ambiguous_search_is_refused(root):
    result = _apply(root, "notes.txt\n<<<<<<< SEARCH\nalpha\n=======\nomega\n>>>>>>> REPLACE\n")
    assert not result.ok and "ambiguous" in result.error and "lines 1, 3" in result.error
    assert (root / "notes.txt").read_text() == "alpha\nbeta\nalpha\n"


def test_a_search_that_is_not_in_the_file_is_refused_with_a_hint(root):
    result = _apply(
        root, "src/app.py\n<<<<<<< SEARCH\ndef helper(x):\n  y = x + 1\n=======\ndef helper(x):\n  y = 0\n>>>>>>> REPLACE\n"
    )
    assert not result.ok and "not in the file" in result.error and "line 8" in result.error
    assert (root / "src/app.py").read_text() == APP


def test_an_empty_search_creates_a_missing_file_but_not_over_an_existing_one(root):
    created = _apply(root, "docs/NOTES.md\n<<<<<<< SEARCH\n=======\n# Notes\n>>>>>>> REPLACE\n")
    assert created.ok, created.error
    assert (root / "docs/NOTES.md").read_text() == "# Notes\n"
    refused = _apply(root, "notes.txt\n<<<<<<< SEARCH\n=======\nall new\n>>>>>>> REPLACE\n")
    assert not refused.ok and "empty SEARCH" in refused.error
    assert (root / "notes.txt").read_text() == "alpha\nbeta\nalpha\n"


def test_crlf_files_keep_their_line_endings(root):
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    result = _apply(root, "win.txt\n<<<<<<< SEARCH\ntwo\n=======\nTWO\n>>>>>>> REPLACE\n")
    assert result.ok, result.error
    assert (root / "win.txt").read_bytes() == b"one\r\nTWO\r\n"


# -- checks --------------------------------------------------------------------------------


def test_an_edit_that_changes_nothing_is_a_failure(root):
    result = _apply(root, "src/util.py\n<<<<<<< SEARCH\n    return s.upper()\n=======\n    return s.upper()\n>>>>>>> REPLACE\n")
    assert result == EditResult(False, [], result.error)
    assert result.error is not None and "the edit changed nothing in src/util.py" in result.error


def test_an_edit_that_breaks_python_syntax_is_refused_and_nothing_changes(root):
    before = _snapshot(root)
    patch = (
        "notes.txt\n<<<<<<< SEARCH\nbeta\n=======\ngamma\n>>>>>>> REPLACE\n"
        "src/app.py\n<<<<<<< SEARCH\n    y = x + 1\n=======\n    y = (x + 1\n>>>>>>> REPLACE\n"
    )
    result = _apply(root, patch)
    assert not result.ok and "src/app.py" in result.error and "python syntax" in result.error
    assert _snapshot(root) == before


def test_a_file_that_did_not_parse_before_may_still_be_edited(root):
    (root / "broken.py").write_text("def f(:\n    return 1\n")
    result = _apply(root, "broken.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 2\n>>>>>>> REPLACE\n")
    assert result.ok, result.error


def test_a_read_only_workspace_refuses_patches(root):
    before = _snapshot(root)
    result = _apply(root, "notes.txt\n<<<<<<< SEARCH\nbeta\n=======\ngamma\n>>>>>>> REPLACE\n", writable=False)
    assert not result.ok and "read-only" in result.error
    assert _snapshot(root) == before


# -- verify --------------------------------------------------------------------------------

_TWO_FILES = (
    "src/util.py\n<<<<<<< SEARCH\n    return s.upper()\n=======\n    return s.lower()\n>>>>>>> REPLACE\n"
    "src/gen/fresh.py\n<<<<<<< SEARCH\n=======\nVALUE = 1\n>>>>>>> REPLACE\n"
)


def test_a_failing_verify_command_rolls_back_every_file(root):
    before = _snapshot(root)
    verify = f"{sys.executable} -c \"import sys; print('lint: 1 error'); sys.exit(3)\""
    result = _apply(root, _TWO_FILES, verify=verify)
    assert not result.ok and result.changed == []
    assert "exit 3" in result.error and "lint: 1 error" in result.error and "restored" in result.error
    assert _snapshot(root) == before
    assert not (root / "src/gen").exists()


def test_a_passing_verify_command_runs_in_the_root_against_the_new_files(root):
    result = _apply(root, _TWO_FILES, verify="grep -q lower src/util.py && test -f src/gen/fresh.py")
    assert result.ok, result.error
    assert [c.path for c in result.changed] == ["src/util.py", "src/gen/fresh.py"]
    assert (root / "src/gen/fresh.py").read_text() == "VALUE = 1\n"


def test_a_verify_command_that_times_out_is_killed_and_rolled_back(root):
    before = _snapshot(root)
    result = _apply(root, _TWO_FILES, verify="sleep 30", timeout_s=0.5)
    assert not result.ok and "timed out" in result.error
    assert _snapshot(root) == before


def test_cancelling_during_verify_restores_the_files(root):
    before = _snapshot(root)

    async def cancel_midway() -> None:
        task = asyncio.create_task(apply_patch(Workspace(root, writable=True), _TWO_FILES, verify="sleep 30"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if (root / "src/gen/fresh.py").exists():
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_midway(), 10))
    assert _snapshot(root) == before


def test_the_result_is_json(root):
    result = _apply(root, "notes.txt\n<<<<<<< SEARCH\nbeta\n=======\ngamma\n>>>>>>> REPLACE\n")
    assert msgspec.json.decode(msgspec.json.encode(result)) == {
        "ok": True,
        "changed": [
            {"path": "notes.txt", "diff": "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,3 +1,3 @@\n alpha\n-beta\n+gamma\n alpha\n"}
        ],
        "error": None,
    }


def test_the_diff_marks_a_missing_final_newline(root):
    (root / "tail.txt").write_text("a\nb")
    result = _apply(root, "tail.txt\n<<<<<<< SEARCH\nb\n=======\nc\n>>>>>>> REPLACE\n")
    assert result.ok, result.error
    assert (root / "tail.txt").read_text() == "a\nc\n"
    assert result.changed[0].diff == "--- a/tail.txt\n+++ b/tail.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
