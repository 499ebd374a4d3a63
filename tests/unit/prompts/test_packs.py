import os
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.prompts.packs import PackError, PackStore, parse_pack, shipped_packs_dir

TASKS = ("editor", "refactor", "tests", "chat", "rag-code", "rag-doc", "ci")
SHIPPED = len(TASKS) + 1  # and ci@v2

GOOD = """---
name: demo
version: {version}
description: A demo pack
task_types: [chat]
output_contract: Anything
---
Body of version {version}.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def good(version: int = 1, **replace: str) -> str:
    text = GOOD.format(version=version)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_every_shipped_pack_parses_and_the_seven_tasks_are_covered_exactly():
    store = PackStore([shipped_packs_dir()])
    assert store.problems() == []
    packs = store.all()
    # ci@v2 is the JSON contract `seekgate review` asks for; the ci task itself keeps v1.
    assert sorted(p.ref for p in packs) == sorted([*(f"{t}@v1" for t in TASKS), "ci@v2"])
    assert sorted({t for p in packs for t in p.task_types}) == sorted(TASKS)
    for pack in packs:
        assert pack.task_types == (pack.name,) and pack.body and pack.description and pack.output_contract


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("editor", ["only the edited text"]),
        ("refactor", ["no behaviour change", "type"]),
        ("tests", ["edge cases", "test framework", "happy path", "at least three"]),
        ("rag-code", ["only", "cite", "missing"]),
        ("rag-doc", ["only", "cite", "do not answer"]),
        ("ci@v1", ["actionable", "path:line"]),
        ("ci@v2", ["json", '"comments"', "path", "line", "severity", "at most ten"]),
    ],
)
def test_shipped_packs_encode_the_design_contracts(ref, words):
    pack = PackStore([shipped_packs_dir()]).get(ref)
    text = (pack.body + "\n" + pack.output_contract).lower()
    assert all(w in text for w in words), [w for w in words if w not in text]


def test_parse_reads_front_matter_and_body(tmp_path):
    pack = parse_pack(write(tmp_path, "demo@v3.md", good(3)))
    assert (pack.ref, pack.name, pack.version) == ("demo@v3", "demo", 3)
    assert (pack.description, pack.task_types, pack.output_contract, pack.body) == ("A demo pack", ("chat",), "Anything", "Body of version 3.")
    assert pack.path == str(tmp_path / "demo@v3.md")


def test_a_byte_order_mark_and_windows_line_ends_are_accepted(tmp_path):
    path = tmp_path / "demo@v1.md"
    path.write_bytes(b"\xef\xbb\xbf" + good().replace("\n", "\r\n").encode())
    assert parse_pack(path).body == "Body of version 1."


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("demo.md", good(), 1, "<name>@v<N>.md"),
        ("Demo@v1.md", good(), 1, "lower case"),
        ("demo@v1.md", "no front matter\n", 1, "front matter"),
        ("demo@v1.md", "---\nname: demo\n", 1, "closing"),
        ("demo@v1.md", "---\n---\nbody\n", 1, "missing `name`"),
        ("demo@v1.md", "---\n- a list\n---\nbody\n", 2, "mapping"),
        # An unclosed bracket is reported where it opens, not where YAML noticed.
        ("demo@v1.md", good(**{"description: A demo pack": "description: [unclosed"}), 4, "not valid YAML"),
        ("demo@v1.md", good(**{"description: A demo pack": "description: a: b"}), 4, "not valid YAML"),
        ("demo@v1.md", good(**{"task_types: [chat]\n": ""}), 1, "missing `task_types`"),
        ("demo@v1.md", good(**{"task_types: [chat]": "task_types: chat"}), 5, "`task_types` must be a non-empty list"),
        ("demo@v1.md", good(**{"task_types: [chat]": "task_types:\n  - chat\n  - 3"}), 5, "`task_types`"),
        ("demo@v1.md", good(**{"version: 1": "version: one"}), 3, "`version` must be a whole number"),
        ("demo@v1.md", good(**{"version: 1": "version: 0"}), 3, "`version`"),
        ("demo@v1.md", good(**{"description: A demo pack": "description: ''"}), 4, "`description` must be a non-empty string"),
        ("demo@v1.md", good(**{"output_contract: Anything": "output_contract:\n  - a list"}), 6, "`output_contract`"),
        ("demo@v2.md", good(1), 3, "`version` is 1 but the file is demo@v2.md"),
        ("other@v1.md", good(1), 2, "`name` is 'demo' but the file is other@v1.md"),
        ("demo@v1.md", good(**{"Body of version 1.": ""}), 8, "no body"),
        ("demo@v1.md", good(**{"output_contract: Anything": "output_contract: Anything\ncolour: blue"}), 7, "unknown key `colour`"),
        ("demo@v1.md", good(**{"output_contract: Anything": "output_contract: Anything\nname: again"}), 7, "`name` is given twice"),
    ],
)
def test_malformed_packs_name_the_path_and_the_line(tmp_path, name, text, line, fragment):
    path = write(tmp_path, name, text)
    with pytest.raises(PackError) as info:
        parse_pack(path)
    assert (info.value.path, info.value.line) == (path, line)
    assert str(info.value).startswith(f"{path}:{line}: ") and fragment in str(info.value)


def test_a_malformed_pack_does_not_take_the_others_down(tmp_path):
    write(tmp_path, "demo@v1.md", good())
    broken = write(tmp_path, "broken@v1.md", "---\nname: broken\nversion: [\n---\nx\n")
    store = PackStore([shipped_packs_dir(), tmp_path])
    assert [p.ref for p in store.all() if p.path.startswith(str(tmp_path))] == ["demo@v1"]
    assert len(store.all()) == SHIPPED + 1
    [problem] = store.problems()
    assert problem.startswith(f"{broken}:3: ") and "not valid YAML" in problem


def test_files_that_are_not_named_like_packs_are_left_alone(tmp_path):
    write(tmp_path, "README.md", "# My prompt packs\n")
    write(tmp_path, ".#demo@v1.md", "an editor's lock file")
    write(tmp_path, "demo@v1.md", good())
    store = PackStore([tmp_path])
    assert [p.ref for p in store.all()] == ["demo@v1"] and store.problems() == []


def test_bare_name_is_the_latest_version(tmp_path):
    for version in (1, 2, 10):
        write(tmp_path, f"demo@v{version}.md", good(version))
    store = PackStore([tmp_path])
    assert store.get("demo").ref == "demo@v10"
    assert store.get("demo@v2").body == "Body of version 2."
    assert store.get(" demo@v1 ").ref == "demo@v1"


def test_an_unknown_version_lists_the_versions_there_are(tmp_path):
    write(tmp_path, "demo@v1.md", good(1))
    write(tmp_path, "demo@v2.md", good(2))
    store = PackStore([tmp_path])
    with pytest.raises(errors.InvalidRequest) as info:
        store.get("demo@v9")
    assert "has no version 9; it has demo@v1, demo@v2" in info.value.message
    assert (info.value.param, info.value.code) == ("X-Prompt-Pack", "unknown_prompt_pack")


@pytest.mark.parametrize("ref", ["nothing", "nothing@v1", "demo@vx", "demo@", ""])
def test_an_unknown_pack_lists_the_packs_there_are(tmp_path, ref):
    write(tmp_path, "demo@v1.md", good(1))
    write(tmp_path, "demo@v2.md", good(2))
    with pytest.raises(errors.InvalidRequest) as info:
        PackStore([tmp_path]).get(ref, param="tasks.chat.pack")
    assert "available: demo@v1, demo@v2" in info.value.message and info.value.param == "tasks.chat.pack"


def test_asking_for_a_broken_pack_says_why_it_did_not_load(tmp_path):
    write(tmp_path, "demo@v1.md", good(**{"version: 1": "version: one"}))
    with pytest.raises(errors.InvalidRequest) as info:
        PackStore([tmp_path]).get("demo@v1")
    assert f"not loaded: {tmp_path / 'demo@v1.md'}:3: `version`" in info.value.message


def test_a_user_folder_overrides_shipped_packs(tmp_path):
    write(tmp_path, "editor@v1.md", good(**{"name: demo": "name: editor"}))
    store = PackStore([shipped_packs_dir(), tmp_path])
    assert store.get("editor@v1").body == "Body of version 1."
    assert store.get("ci@v1").path.startswith(str(shipped_packs_dir()))
    assert len(store.all()) == SHIPPED


def test_a_broken_override_leaves_the_shipped_pack_in_service(tmp_path):
    write(tmp_path, "editor@v1.md", "---\nname: editor\n")
    store = PackStore([shipped_packs_dir(), tmp_path])
    assert store.get("editor@v1").path.startswith(str(shipped_packs_dir()))
    assert store.problems()[0].startswith(f"{tmp_path / 'editor@v1.md'}:1: ")


def test_an_edited_body_is_seen_without_a_restart(tmp_path):
    path = write(tmp_path, "demo@v1.md", good())
    store = PackStore([tmp_path], check_interval=0)
    assert store.get("demo").body == "Body of version 1."
    path.write_text(good(**{"Body of version 1.": "Edited body, longer than before."}))
    assert store.get("demo@v1").body == "Edited body, longer than before."


def test_an_edit_of_the_same_size_is_seen_by_its_mtime(tmp_path):
    path = write(tmp_path, "demo@v1.md", good())
    store = PackStore([tmp_path], check_interval=0)
    assert store.get("demo").body == "Body of version 1."
    stat = path.stat()
    path.write_text(good(**{"Body of version 1.": "Body of version X."}))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert store.get("demo").body == "Body of version X."


def test_added_and_removed_versions_are_seen_without_a_restart(tmp_path):
    write(tmp_path, "demo@v1.md", good(1))
    store = PackStore([tmp_path], check_interval=0)
    assert store.get("demo").ref == "demo@v1"
    write(tmp_path, "demo@v2.md", good(2))
    assert store.get("demo").ref == "demo@v2"
    (tmp_path / "demo@v2.md").unlink()
    assert store.get("demo").ref == "demo@v1"
    (tmp_path / "demo@v1.md").unlink()
    with pytest.raises(errors.InvalidRequest):
        store.get("demo")


def test_a_fixed_file_leaves_the_problem_list(tmp_path):
    path = write(tmp_path, "demo@v1.md", "---\nname: demo\n")
    store = PackStore([tmp_path], check_interval=0)
    assert len(store.problems()) == 1
    path.write_text(good())
    assert store.problems() == [] and store.get("demo").ref == "demo@v1"


def test_only_changed_files_are_parsed_again(tmp_path):
    write(tmp_path, "demo@v1.md", good(1))
    write(tmp_path, "demo@v2.md", good(2))
    store = PackStore([tmp_path], check_interval=0)
    v1, v2 = store.get("demo@v1"), store.get("demo@v2")
    write(tmp_path, "demo@v2.md", good(2, **{"Body of version 2.": "Body of version 2, edited."}))
    assert store.get("demo@v1") is v1 and store.get("demo@v2") is not v2


def test_files_are_not_looked_at_again_within_the_check_interval(tmp_path):
    write(tmp_path, "demo@v1.md", good(1))
    store = PackStore([tmp_path], check_interval=3600)
    write(tmp_path, "demo@v2.md", good(2))
    assert store.get("demo").ref == "demo@v1"


def test_a_missing_user_folder_is_not_an_error(tmp_path):
    store = PackStore([shipped_packs_dir(), tmp_path / "absent"])
    assert store.problems() == [] and len(store.all()) == SHIPPED
