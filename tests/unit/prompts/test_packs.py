from pathlib import Path

import pytest

from seekgate import errors
from seekgate.prompts.packs import PackError, PackStore, parse_pack, shipped_packs_dir

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


def test_every_shipped_pack_parses_and_the_seven_tasks_are_covered():
    store = PackStore([shipped_packs_dir()])
    assert store.problems() == []
    packs = store.all()
    assert {p.ref for p in packs} == {f"{t}@v1" for t in ("editor", "refactor", "tests", "chat", "rag-code", "rag-doc", "ci")}
    assert {t for p in packs for t in p.task_types} == {"editor", "refactor", "tests", "chat", "rag-code", "rag-doc", "ci"}
    assert "only the edited text" in store.get("editor").output_contract.lower()
    assert "three edge cases" in store.get("tests@v1").output_contract


def test_parse_reads_front_matter_and_body(tmp_path):
    pack = parse_pack(write(tmp_path, "demo@v3.md", GOOD.format(version=3)))
    assert (pack.ref, pack.description, pack.task_types, pack.body) == ("demo@v3", "A demo pack", ("chat",), "Body of version 3.")


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("demo.md", GOOD.format(version=1), 1, "<name>@v<N>.md"),
        ("demo@v1.md", "no front matter\n", 1, "front matter"),
        ("demo@v1.md", "---\nname: demo\n", 1, "closing"),
        ("demo@v1.md", GOOD.format(version=1).replace("description: A demo pack", "description: [unclosed"), 4, "YAML"),
        ("demo@v1.md", GOOD.format(version=1).replace("task_types: [chat]\n", ""), 1, "task_types"),
        ("demo@v1.md", GOOD.format(version=1).replace("task_types: [chat]", "task_types: chat"), 5, "task_types"),
        ("demo@v1.md", GOOD.format(version=1).replace("version: 1", "version: one"), 3, "version"),
        ("demo@v2.md", GOOD.format(version=1), 2, "demo@v2.md"),
        ("demo@v1.md", GOOD.format(version=1).replace("Body of version 1.", ""), 8, "no body"),
        ("demo@v1.md", GOOD.format(version=1).replace("output_contract: Anything", "output_contract: Anything\ncolour: blue"), 7, "colour"),
    ],
)
def test_malformed_packs_name_the_path_and_line(tmp_path, name, text, line, fragment):
    path = write(tmp_path, name, text)
    with pytest.raises(PackError) as info:
        parse_pack(path)
    assert info.value.line == line and str(path) in str(info.value) and fragment in str(info.value)


def test_a_malformed_pack_does_not_take_the_others_down(tmp_path):
    write(tmp_path, "demo@v1.md", GOOD.format(version=1))
    write(tmp_path, "broken@v1.md", "---\nname: [\n---\nx\n")
    store = PackStore([tmp_path])
    assert [p.ref for p in store.all()] == ["demo@v1"]
    assert len(store.problems()) == 1 and "broken@v1.md:" in store.problems()[0]


def test_bare_name_is_the_latest_version_and_unknown_versions_list_what_exists(tmp_path):
    write(tmp_path, "demo@v1.md", GOOD.format(version=1))
    write(tmp_path, "demo@v2.md", GOOD.format(version=2))
    store = PackStore([tmp_path])
    assert store.get("demo").ref == "demo@v2" and store.get("demo@v1").body == "Body of version 1."
    for ref in ("demo@v9", "nothing", "demo@vx"):
        with pytest.raises(errors.InvalidRequest) as info:
            store.get(ref, param="X-Prompt-Pack")
        assert "demo@v1" in info.value.message and "demo@v2" in info.value.message and info.value.param == "X-Prompt-Pack"


def test_a_user_folder_overrides_shipped_packs(tmp_path):
    write(tmp_path, "editor@v1.md", GOOD.format(version=1).replace("name: demo", "name: editor"))
    store = PackStore([shipped_packs_dir(), tmp_path])
    assert store.get("editor@v1").body == "Body of version 1."
    assert store.get("ci@v1").path.startswith(str(shipped_packs_dir()))


def test_edits_additions_and_removals_are_seen_without_a_restart(tmp_path):
    first = write(tmp_path, "demo@v1.md", GOOD.format(version=1))
    store = PackStore([tmp_path], check_interval=0)
    assert store.get("demo").body == "Body of version 1."
    first.write_text(GOOD.format(version=1).replace("Body of version 1.", "Edited body, longer than before."))
    assert store.get("demo@v1").body == "Edited body, longer than before."
    write(tmp_path, "demo@v2.md", GOOD.format(version=2))
    assert store.get("demo").ref == "demo@v2"
    (tmp_path / "demo@v2.md").unlink()
    assert store.get("demo").ref == "demo@v1"


def test_a_missing_user_folder_is_not_an_error(tmp_path):
    store = PackStore([shipped_packs_dir(), tmp_path / "absent"])
    assert store.problems() == [] and len(store.all()) == 7
