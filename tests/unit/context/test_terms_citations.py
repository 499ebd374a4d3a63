"""Code-aware terms, citation checking and X-Context-Refs parsing."""

import pytest

from seekgate import errors
from seekgate.context.citations import check_citations, find_citations
from seekgate.context.stage import parse_refs
from seekgate.context.terms import code_terms, split_identifier


@pytest.mark.parametrize(
    "word,parts",
    [("parseHttpResponse", ["parse", "http", "response"]), ("HTTPServerError2", ["http", "server", "error", "2"]),
     ("snake_case_name", ["snake", "case", "name"]), ("__init__", ["init"]), ("x", ["x"])],
)  # fmt: skip
def test_identifiers_split_into_their_words(word, parts):
    assert split_identifier(word) == parts


def test_names_and_questions_meet_in_the_same_terms():
    code = set(code_terms("def parse_http_responses(raw): ...").split())
    question = set(code_terms("How does it parse an HTTP response?", query=True).split())
    assert question == {"pars", "http", "respons"} and question <= code
    assert "parsehttprespons" in code_terms("parseHttpResponses")  # the whole name is a term too
    assert code_terms("the of and", query=True) == ""


def test_citations_are_found_in_their_usual_forms():
    text = ("See `src/app.py:12` and src/util/strings.py:3-9, also pkg/mod.rs#L4-L6; "
            "not a citation: 10:30, version 1.2:3? http://host:80 and C:5")  # fmt: skip
    assert [c.ref for c in find_citations(text)] == ["src/app.py:12", "src/util/strings.py:3-9", "pkg/mod.rs:4-6"]


def test_checking_flags_unknown_paths_and_lines_past_the_end():
    files = {"src/app.py": 20, "README.md": 5}
    checked = check_citations("src/app.py:3-8 is fine, src/app.py:19-25 runs past, nosuch.py:1 does not exist, README.md:5 ok", files.get)
    problems = {c.ref: c.problem for c in checked}
    assert problems == {
        "src/app.py:3-8": "",
        "src/app.py:19-25": "line 25 is past the end (20 lines)",
        "nosuch.py:1": "unknown path",
        "README.md:5": "",
    }
    assert check_citations("src/app.py:9-3", files.get)[0].problem == "invalid line range"


def test_context_refs_header():
    refs = parse_refs("seekgate@abc123, src/app.py ,./README.md")
    assert refs is not None and (refs.repo, refs.commit, refs.paths) == ("seekgate", "abc123", ("src/app.py", "README.md"))
    assert parse_refs("seekgate").commit is None  # type: ignore[union-attr]
    assert parse_refs(",src/a.py").repo is None  # type: ignore[union-attr]
    assert parse_refs("  ") is None and parse_refs(None) is None
    with pytest.raises(errors.InvalidRequest, match="at most"):
        parse_refs("r," + ",".join(f"f{i}.py" for i in range(9)))
