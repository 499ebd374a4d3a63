"""The scalpel file layer: every path stays inside the root, read-only is enforced here, text only."""

from pathlib import Path

import pytest

from seekgate.mcp.workspace import Match, Workspace, WorkspaceError


def _write(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    _write(
        root,
        {
            "src/app.py": "import os\n\ndef main():\n    return os.getcwd()\n",
            "src/util/strings.py": "def shout(s):\n    return s.upper()\n",
            "README.md": "# App\n\nMain entry point.\n",
            ".gitignore": "*.log\nbuild/\n",
            "debug.log": "main noise\n",
            "build/out.py": "def main(): pass\n",
            "node_modules/lib/index.js": "function main() {}\n",
            "src/__pycache__/app.cpython-311.pyc": b"\0\0main",
            ".venv/lib/site.py": "def main(): pass\n",
            ".git/config": "[core]\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0main",
        },
    )
    (tmp_path / "secret.txt").write_text("outside\n")
    return root


def test_relative_and_absolute_inside_paths_resolve_to_the_same_file(root):
    ws = Workspace(root, writable=False)
    assert ws.resolve("src/app.py") == root / "src/app.py"
    assert ws.resolve("./src/../src/app.py") == root / "src/app.py"
    assert ws.resolve(str(root / "src/app.py")) == root / "src/app.py"
    assert ws.relative(str(root / "src" / "util")) == "src/util"
    assert ws.read(str(root / "README.md")) == ws.read("README.md") == "# App\n\nMain entry point.\n"


@pytest.mark.parametrize("path", ["../secret.txt", "src/../../secret.txt", "..", "/etc/passwd"])
def test_paths_outside_the_root_are_refused(root, path):
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.resolve(path)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read(path)


def test_the_absolute_path_of_a_file_next_to_the_root_is_refused(root):
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read(str(root.parent / "secret.txt"))


def test_a_symlink_to_a_file_outside_is_refused(root):
    (root / "leak.txt").symlink_to(root.parent / "secret.txt")
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read("leak.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_all({"leak.txt": "overwritten\n"})
    assert (root.parent / "secret.txt").read_text() == "outside\n"


def test_a_symlinked_folder_pointing_outside_is_refused_for_reads_and_new_files(root):
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (outside / "data.txt").write_text("x\n")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read("linked/data.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_all({"linked/new.txt": "planted\n"})
    assert sorted(p.name for p in outside.iterdir()) == ["data.txt"]
    assert "linked/" not in ws.list()


def test_a_symlink_inside_pointing_inside_works(root):
    (root / "alias.py").symlink_to(root / "src/app.py")
    ws = Workspace(root, writable=True)
    assert ws.read("alias.py").startswith("import os")
    ws.write_all({"alias.py": "x = 1\n"})
    assert (root / "alias.py").is_symlink()  # the target was replaced, not the link
    assert (root / "src/app.py").read_text() == "x = 1\n"


def test_nul_bytes_and_git_internals_are_refused(root):
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="NUL"):
        ws.resolve("src/app.py\0.txt")
    with pytest.raises(WorkspaceError, match=r"\.git"):
        ws.read(".git/config")
    with pytest.raises(WorkspaceError, match=r"\.git"):
        ws.write_all({".git/hooks/pre-commit": "#!/bin/sh\n"})
    assert not (root / ".git/hooks").exists()


def test_read_slices_lines_one_based_inclusive(root):
    ws = Workspace(root, writable=False)
    assert ws.read("src/app.py", start_line=3, end_line=4) == "def main():\n    return os.getcwd()\n"
    assert ws.read("src/app.py", start_line=3) == "def main():\n    return os.getcwd()\n"
    assert ws.read("src/app.py", end_line=1) == "import os\n"
    with pytest.raises(WorkspaceError, match="past the end"):
        ws.read("src/app.py", start_line=9)
    with pytest.raises(WorkspaceError, match="bad line range"):
        ws.read("src/app.py", start_line=3, end_line=2)


def test_read_refuses_binaries_non_utf8_folders_and_missing_files(root):
    _write(root, {"latin1.txt": "caf\xe9\n".encode("latin-1")})
    ws = Workspace(root, writable=False)
    with pytest.raises(WorkspaceError, match="binary file"):
        ws.read("logo.png")
    with pytest.raises(WorkspaceError, match="not UTF-8"):
        ws.read("latin1.txt")
    with pytest.raises(WorkspaceError, match="is a folder"):
        ws.read("src")
    with pytest.raises(WorkspaceError, match="no such file"):
        ws.read("src/nope.py")


def test_read_caps_the_size_but_a_big_file_can_be_read_in_slices(root):
    _write(root, {"big.txt": "".join(f"line {n}\n" for n in range(1, 501))})
    ws = Workspace(root, writable=False, max_bytes=1000)
    with pytest.raises(WorkspaceError, match="over the 1000 byte limit; read a range"):
        ws.read("big.txt")
    assert ws.read("big.txt", start_line=250, end_line=251) == "line 250\nline 251\n"


def test_read_keeps_crlf_line_endings(root):
    _write(root, {"win.txt": b"a\r\nb\r\n"})
    assert Workspace(root, writable=False).read("win.txt") == "a\r\nb\r\n"


def test_list_is_sorted_marks_folders_and_skips_vendored_and_ignored_paths(root):
    ws = Workspace(root, writable=False)
    assert ws.list() == [".gitignore", "README.md", "logo.png", "src/", "src/app.py", "src/util/", "src/util/strings.py"]
    assert ws.list("src/util") == ["src/util/strings.py"]
    assert ws.list("src/app.py") == ["src/app.py"]


def test_list_honours_nested_gitignore_files(root):
    _write(root, {"src/.gitignore": "generated_*.py\n", "src/generated_api.py": "x = 1\n", "src/util/generated_x.py": "y\n"})
    ws = Workspace(root, writable=False)
    assert "src/generated_api.py" not in ws.list()
    assert "src/util/generated_x.py" not in ws.list("src/util")
    assert ws.list("src", pattern="*.py") == ["src/app.py", "src/util/strings.py"]


def test_list_patterns_match_names_or_paths_with_double_star(root):
    _write(root, {"tests/test_app.py": "", "tests/unit/test_strings.py": "", "tests/conftest.py": ""})
    ws = Workspace(root, writable=False)
    assert ws.list(pattern="test_*.py") == ["tests/test_app.py", "tests/unit/test_strings.py"]
    assert ws.list(pattern="tests/*.py") == ["tests/conftest.py", "tests/test_app.py"]
    assert ws.list(pattern="tests/**/test_*.py") == ["tests/test_app.py", "tests/unit/test_strings.py"]
    assert ws.list("tests", pattern="unit/*.py") == ["tests/unit/test_strings.py"]
    assert ws.list(pattern="**/util/") == ["src/util/"]
    assert ws.list(pattern="*.[mp][dy]") == ["README.md", "src/app.py", "src/util/strings.py", "tests/conftest.py",
                                              "tests/test_app.py", "tests/unit/test_strings.py"]  # fmt: skip


def test_list_stops_at_the_limit_in_sorted_order(root):
    ws = Workspace(root, writable=False)
    assert ws.list(limit=3) == [".gitignore", "README.md", "logo.png"]


def test_search_finds_lines_in_text_files_only(root):
    ws = Workspace(root, writable=False)
    assert ws.search(r"main\b") == [Match("src/app.py", 3, "def main():")]  # not in .log, build/, node_modules, .venv
    assert ws.search(r"def \w+\(") == [Match("src/app.py", 3, "def main():"), Match("src/util/strings.py", 1, "def shout(s):")]
    assert ws.search("upper", path="src/util") == [Match("src/util/strings.py", 2, "    return s.upper()")]
    assert ws.search("main", glob="*.md") == []
    assert ws.search("(?i)main", glob="*.md") == [Match("README.md", 3, "Main entry point.")]
    assert ws.search(r"def|import", limit=2) == [Match("src/app.py", 1, "import os"), Match("src/app.py", 3, "def main():")]


def test_search_cuts_long_lines_around_the_match_and_rejects_bad_regexes(root):
    _write(root, {"min.js": "a" * 1000 + "NEEDLE" + "b" * 1000 + "\n"})
    ws = Workspace(root, writable=False)
    (hit,) = ws.search("NEEDLE")
    assert hit.line == 1 and "NEEDLE" in hit.text and len(hit.text) <= 202
    with pytest.raises(WorkspaceError, match="invalid regex"):
        ws.search("(unclosed")


def test_a_read_only_workspace_refuses_every_write_at_the_file_layer(root):
    ws = Workspace(root, writable=False)
    with pytest.raises(WorkspaceError, match="read-only"):
        ws.write_all({"src/app.py": "x = 1\n", "new.py": "y = 2\n"})
    assert (root / "src/app.py").read_text().startswith("import os")
    assert not (root / "new.py").exists()


def test_write_all_replaces_files_keeping_their_mode_and_creates_new_ones(root):
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho a\n")
    script.chmod(0o755)
    ws = Workspace(root, writable=True)
    ws.write_all({"run.sh": "#!/bin/sh\necho b\n", "pkg/sub/new.py": "x = 1\n"})
    assert script.read_text() == "#!/bin/sh\necho b\n"
    assert script.stat().st_mode & 0o777 == 0o755
    assert (root / "pkg/sub/new.py").read_text() == "x = 1\n"
    assert not [p for p in root.rglob("*.scalpel")], "temporary files are left behind"


def test_write_all_writes_nothing_when_one_path_is_refused(root):
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_all({"src/app.py": "changed\n", "../escape.txt": "x\n"})
    assert (root / "src/app.py").read_text().startswith("import os")
    assert not (root.parent / "escape.txt").exists()


def test_write_all_changes_no_file_when_writing_one_of_them_fails(root):
    ws = Workspace(root, writable=True)
    with pytest.raises(WorkspaceError, match="could not write"):
        ws.write_all({"src/app.py": "changed\n", "README.md/under_a_file.txt": "x\n"})
    assert (root / "src/app.py").read_text().startswith("import os")
    assert not [p for p in root.rglob("*.scalpel")]
