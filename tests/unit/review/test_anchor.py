"""Comments never name a line outside the diff: kept, moved onto it, or dropped, and counted."""

from seekgate.review.anchor import anchor
from seekgate.review.prompt import RawComment

SHOWN = {"src/app.py": frozenset({10, 11, 12, 13, 40, 41}), "docs/readme.md": frozenset({1, 2})}


def raw(path: str, line: int, severity: str = "warning", body: str = "Check this.") -> RawComment:
    return RawComment(path, line, severity, body)


def test_a_comment_on_a_shown_line_is_kept_as_is():
    result = anchor([raw("src/app.py", 11)], SHOWN, window=3, limit=10)
    ((c,),) = [result.comments]
    assert (c.path, c.line, c.reanchored_from) == ("src/app.py", 11, None)
    assert (result.reanchored, result.dropped) == (0, {})


def test_a_line_just_off_a_hunk_moves_to_the_nearest_shown_line_and_is_counted():
    result = anchor([raw("src/app.py", 15), raw("src/app.py", 8)], SHOWN, window=3, limit=10)
    assert [(c.line, c.reanchored_from) for c in result.comments] == [(13, 15), (10, 8)]
    assert result.reanchored == 2


def test_lines_far_from_every_hunk_and_unknown_files_are_dropped_and_counted():
    result = anchor([raw("src/app.py", 25), raw("src/other.py", 11), raw("src/app.py", 12, body="  ")], SHOWN, window=3, limit=10)
    assert result.comments == ()
    assert result.dropped == {"line outside the diff": 1, "unknown file": 1, "empty": 1}


def test_window_zero_never_moves_a_comment():
    result = anchor([raw("src/app.py", 14)], SHOWN, window=0, limit=10)
    assert result.comments == () and result.dropped == {"line outside the diff": 1}


def test_paths_with_git_prefixes_or_a_unique_suffix_are_matched():
    result = anchor([raw("b/src/app.py", 10), raw("app.py", 12), raw("./docs/readme.md", 1)], SHOWN, window=0, limit=10)
    assert [(c.path, c.line) for c in result.comments] == [("src/app.py", 10), ("src/app.py", 12), ("docs/readme.md", 1)]


def test_duplicates_are_dropped_and_the_most_severe_kept_within_the_limit():
    comments = [
        raw("src/app.py", 10, "suggestion", "Rename x."),
        raw("src/app.py", 11, "error", "Null dereference."),
        raw("src/app.py", 11, "error", "null  dereference."),
        raw("src/app.py", 40, "warning", "Unchecked return."),
        raw("src/app.py", 41, "bogus", "Unknown severity reads as a warning."),
    ]
    result = anchor(comments, SHOWN, window=0, limit=3)
    assert [(c.severity, c.line) for c in result.comments] == [("error", 11), ("warning", 40), ("warning", 41)]
    assert result.dropped == {"duplicate": 1, "over max_comments": 1}


def test_the_fingerprint_ignores_the_line_and_whitespace_but_not_the_words():
    a, b, c = (anchor([r], SHOWN, window=3, limit=10).comments[0] for r in (raw("src/app.py", 10, body="Fix  it"), raw("src/app.py", 12, body="fix it "), raw("src/app.py", 10, body="Fix that")))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_a_looping_body_says_each_sentence_once_and_a_cut_end_is_dropped():
    from seekgate.review.anchor import tidy
    from seekgate.review.prompt import MAX_BODY_CHARS

    looped = ("The mean price is wrong. " * 40)[: MAX_BODY_CHARS - 2] + " [1"
    assert tidy(looped) == "The mean price is wrong."
    assert tidy("Divide by len only when non-empty. Add a test.") == "Divide by len only when non-empty. Add a test."
    assert tidy("  Fine as is  ") == "Fine as is"
