"""Code-aware terms for full-text search: identifiers split into the words they are made of.

`parseHttpResponse`, `parse_http_response` and `ParseHTTPResponse` all contain the words
parse, http and response, and a question says "parse the HTTP response". Each identifier is
kept whole (exact-name queries still rank it first) and followed by its parts, lower-cased;
plural and -ing/-ed forms are folded to a common stem so "parsing responses" meets
`parse_response`.
"""

from __future__ import annotations

import re

__all__ = ["code_terms", "plain_words", "split_identifier"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOP = frozenset(
    "a an and are as at be by do does for from has have how i if in into is it its of on or that the this to was "
    "what when where which who why will with".split()
)


# Keywords and names every language repeats: they say nothing about what a piece of code does.
_KEYWORDS = frozenset(
    "def return self cls import from class if else elif for while in not and or is none true false pass raise try except "
    "finally with as lambda yield async await const let var function new this public private protected static void int "
    "str bool float char long unsigned struct enum interface extends implements package func fn pub mut impl use mod "
    "match case switch break continue default null nil undefined throw throws catch typeof instanceof".split()
)


def plain_words(text: str) -> str:
    """Code as the words it is made of, for an embedding model: identifiers split and
    lower-cased, keywords and one-letter names dropped (`def parse_url(s):` -> "parse url")."""
    return " ".join(p for w in _WORD.findall(text) for p in split_identifier(w) if len(p) > 1 and p not in _KEYWORDS)


def split_identifier(word: str) -> list[str]:
    """`HTTPServerError2` -> ["http", "server", "error", "2"]; `snake_case` -> ["snake", "case"]."""
    return [p.lower() for p in _PARTS.findall(word)]


def _stem(word: str) -> str:
    """A light, dictionary-free fold of plural, -ing, -ed and final -e, so that parse, parses,
    parsed and parsing (and response, responses) meet in one term."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def code_terms(text: str, *, query: bool = False) -> str:
    """The full-text form of `text`: each word's stemmed parts, and for a compound identifier
    also the whole of it run together (`parsehttpresponse`: one token, which the full-text
    tokenizer will not split again). For a query (`query=True`) common English words go, so a
    question is not an OR of noise."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = split_identifier(word)
        if query:
            parts = [p for p in parts if p not in _STOP]
        if len(parts) > 1:
            out.append("".join(parts))
        out.extend(_stem(p) for p in parts)
    return " ".join(out)
