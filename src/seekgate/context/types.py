"""The context layer's types: what chunking produces, what stores keep, what retrieval returns."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Chunk", "Hit", "Kind", "Snapshot", "StoredChunk"]

Kind = Literal["code", "doc"]
"""Code and prose are ranked separately: README text would drown lexical matches on code."""


class Chunk(msgspec.Struct, frozen=True):
    """A piece of one file, as chunking cuts it. Lines are 1-based and inclusive."""

    path: str
    """Relative to the repository root, with `/` separators."""
    language: str
    """`python`, `javascript`, `typescript`, `go`, `rust`, `java`, `c`, `cpp`, `markdown`, `rst`,
    `html`, `pdf`, `text`, ... (the chunker that made it)."""
    kind: Kind
    start_line: int
    end_line: int
    symbol: str
    """`function`, `Class.method`, `Class` for a class signature; for documents the heading path
    (`Install > From source`); "" for a window of lines."""
    text: str
    parent: str = ""
    """The enclosing symbol when a large class was split into its signature and its methods."""


class StoredChunk(msgspec.Struct, frozen=True):
    """A chunk as a store returns it: with its id and the blob (file content hash) it came from."""

    id: int
    blob: str
    chunk: Chunk


class Snapshot(msgspec.Struct, frozen=True):
    """One indexed state of a repository: a commit (or a plain folder's content hash)."""

    repo: str
    commit: str
    created: float
    """Unix time the snapshot was recorded."""
    files: int
    root: str = ""
    """Where the repository was indexed from."""


class Hit(msgspec.Struct, frozen=True):
    """One retrieval result."""

    chunk: Chunk
    score: float
    commit: str
    id: int = 0
