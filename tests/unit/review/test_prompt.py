"""Packing hunks into calls, the answer's schema, and reading replies."""

import json

import jsonschema
import pytest

from seekgate.review.diff import parse_diff
from seekgate.review.prompt import Batch, Piece, RawComment, estimate_tokens, parse_reply, plan_batches, reply_schema


def file_diff(path: str, starts: list[int], size: int = 3, width: int = 20) -> str:
    """A diff of `path` with one hunk at each new-file line in `starts`, `size` added lines each."""
    out = [f"diff --git a/{path} b/{path}", f"--- a/{path}", f"+++ b/{path}"]
    shift = 0
    for start in starts:
        out.append(f"@@ -{start - shift},1 +{start},{size + 1} @@ def f{start}():")
        out.append(f" context {start}")
        out += [f"+{'x' * width} {start + i}" for i in range(1, size + 1)]
        shift += size
    return "\n".join(out) + "\n"


def test_hunks_go_in_diff_order_and_no_call_exceeds_the_budget():
    files = parse_diff(file_diff("a.py", [10, 50, 90]) + file_diff("b.py", [5, 40]))
    budget = 150
    batches = plan_batches(files, budget)
    assert len(batches) > 1
    order = [(p.file.path, p.hunk.new_start) for b in batches for p in b.pieces]
    assert order == [("a.py", 10), ("a.py", 50), ("a.py", 90), ("b.py", 5), ("b.py", 40)]
    assert all(sum(estimate_tokens(p.render()) + 1 for p in b.pieces) <= budget for b in batches)


def test_everything_fits_in_one_call_when_the_budget_allows():
    files = parse_diff(file_diff("a.py", [10, 50]) + file_diff("b.py", [5]))
    (batch,) = plan_batches(files, 10_000)
    assert batch.shown() == {"a.py": frozenset({10, 11, 12, 13, 50, 51, 52, 53}), "b.py": frozenset({5, 6, 7, 8})}


def test_a_hunk_bigger_than_a_call_is_cut_into_parts_that_keep_every_line_and_its_number():
    (f,) = parse_diff(file_diff("big.py", [100], size=120, width=60))
    batches = plan_batches([f], 400)
    parts = [p for b in batches for p in b.pieces]
    assert len(parts) > 2 and all(p.part == (i, len(parts)) for i, p in enumerate(parts, 1))
    assert [ln for p in parts for ln in p.hunk.lines] == list(f.hunks[0].lines)
    assert parts[1].hunk.new_start == parts[1].hunk.lines[0].new
    assert all(estimate_tokens(p.render()) <= 400 for p in parts)
    assert "(part 2 of" in parts[1].render()


def test_each_line_is_shown_with_its_new_number_and_removed_lines_without():
    diff = "--- a/x.py\n+++ b/x.py\n@@ -7,3 +7,3 @@ class A:\n keep\n-old\n+new\n tail\n"
    (batch,) = plan_batches(parse_diff(diff), 1000)
    text = batch.prompt(5)
    assert "at most 5 comments" in text
    assert "File: x.py\n@@ -7,3 +7,3 @@ class A:\n     7   keep\n       - old\n     8 + new\n     9   tail" in text


def test_renamed_and_new_files_say_so():
    diff = (
        "diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n--- a/old.py\n+++ b/new.py\n"
        "@@ -1 +1 @@\n-a\n+b\ndiff --git a/n.md b/n.md\nnew file mode 100644\n--- /dev/null\n+++ b/n.md\n@@ -0,0 +1 @@\n+hi\n"
    )
    renamed, added = (Piece(f, f.hunks[0]).render() for f in parse_diff(diff))
    assert renamed.startswith("File: new.py (renamed from old.py)") and added.startswith("File: n.md (new file)")


def test_halving_a_call_splits_its_pieces_then_its_lines():
    files = parse_diff(file_diff("a.py", [10, 50, 90]))
    (batch,) = plan_batches(files, 10_000)
    first, second = batch.halves()
    assert [p.hunk.new_start for p in first.pieces] == [10] and [p.hunk.new_start for p in second.pieces] == [50, 90]
    one, two = first.halves()
    assert [ln.new for ln in one.pieces[0].hunk.lines + two.pieces[0].hunk.lines] == [10, 11, 12, 13]
    tiny = Batch((Piece(files[0], files[0].hunks[0].__class__(1, 0, 1, 1, "", one.pieces[0].hunk.lines[:1])),))
    assert tiny.halves() is None


def test_the_schema_allows_only_lines_the_call_shows_per_file():
    (batch,) = plan_batches(parse_diff(file_diff("a.py", [10]) + file_diff("b.py", [5])), 10_000)
    schema = reply_schema(batch, 3)
    ok = {"comments": [{"path": "a.py", "line": 11, "severity": "error", "body": "x"}, {"path": "b.py", "line": 5, "severity": "suggestion", "body": "y"}]}
    jsonschema.validate(ok, schema)
    for bad in (
        {"path": "a.py", "line": 5, "severity": "error", "body": "b.py's line, not a.py's"},
        {"path": "c.py", "line": 11, "severity": "error", "body": "no such file"},
        {"path": "a.py", "line": 11, "severity": "fatal", "body": "no such severity"},
        {"path": "a.py", "line": 11, "severity": "error", "body": ""},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"comments": [bad]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"comments": [ok["comments"][0]] * 4}, schema)


def test_replies_are_read_as_json_fenced_json_or_list_lines():
    want = [RawComment("a.py", 3, "error", "Divides by zero when n is 0.")]
    assert parse_reply(json.dumps({"comments": [{"path": "a.py", "line": 3, "severity": "error", "body": " Divides by zero when n is 0. "}]})) == want
    assert parse_reply('Here you go:\n```json\n{"comments": [{"path": "a.py", "line": "3", "severity": "ERROR", "body": "Divides by zero when n is 0."}]}\n```') == want
    assert parse_reply("- a.py:3 [error] Divides by zero when n is 0.\n- `b.py:7` [suggestion]: Name it count.") == [
        *want,
        RawComment("b.py", 7, "suggestion", "Name it count."),
    ]
    assert parse_reply("The diff looks good.") == [] and parse_reply('{"comments": "none"}') == []
    assert parse_reply('{"comments": [{"path": "a.py", "line": true, "body": "x"}, {"path": "a.py", "line": 2, "body": "y"}]}') == [
        RawComment("a.py", 2, "warning", "y")
    ]


def test_an_answer_cut_at_max_tokens_keeps_the_comments_written_in_full():
    cut = '{"comments": [{"path": "a.py", "line": 3, "severity": "error", "body": "Whole."}, {"path": "a.py", "line": 4, "sev'
    assert parse_reply(cut) == [RawComment("a.py", 3, "error", "Whole.")]
    assert parse_reply('{"comments": [') == [] and parse_reply('{"comm') == []
