"""The store protocol: every store keeps the same things and answers the same questions.

Content is kept by blob (a file's content hash, git's blob id for files in git), so a file
that did not change between two commits, or two repositories, is chunked and embedded once.
A snapshot maps (repo, commit) to {path: blob}; retrieval pinned to a commit sees only the
blobs of that snapshot. Calls are blocking: the async side runs them in threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from seekgate import errors
from seekgate.context.types import Chunk, Kind, Snapshot, StoredChunk

__all__ = ["CHUNK_COLUMNS", "NAME_WEIGHT", "Store", "pick_snapshot", "query_terms", "stored_chunk"]

CHUNK_COLUMNS = "id, blob, path, language, kind, start_line, end_line, symbol, parent, text"
NAME_WEIGHT = 4.0
"""A query word in a chunk's path or symbol counts this many times one in its body (BM25F):
a function's name says what it does more surely than any word inside it."""
_MAX_TERMS = 48


def query_terms(query: str) -> list[str]:
    """The distinct terms of a full-text query, in order, at most 48."""
    return list(dict.fromkeys(t for t in query.split() if t))[:_MAX_TERMS]


def pick_snapshot(known: list[Snapshot], repo: str, commit: str | None) -> Snapshot | None:
    """From a repository's snapshots (newest first): the newest, an exact commit, or the one
    commit a prefix of at least 4 characters names."""
    if commit is None:
        return known[0] if known else None
    exact = [s for s in known if s.commit == commit]
    if exact:
        return exact[0]
    if len(commit) < 4:
        raise errors.InvalidRequest(f"commit {commit!r} is too short; give at least 4 characters")
    matches = [s for s in known if s.commit.startswith(commit)]
    if len(matches) > 1:
        raise errors.InvalidRequest(f"commit {commit!r} is ambiguous in {repo}: {', '.join(s.commit[:12] for s in matches)}")
    return matches[0] if matches else None


def stored_chunk(row: Sequence[object]) -> StoredChunk:
    """A StoredChunk from a row of CHUNK_COLUMNS."""
    i, blob, path, language, kind, start, end, symbol, parent, text = row
    chunk = Chunk(path=path, language=language, kind=kind, start_line=start, end_line=end, symbol=symbol, text=text, parent=parent)  # type: ignore[arg-type]
    return StoredChunk(id=i, blob=blob, chunk=chunk)  # type: ignore[arg-type]


class Store(Protocol):
    dim: int
    """Width of the embedding vectors this store holds (fixed when it is created)."""

    # -- writing -------------------------------------------------------------------------------

    def has_blobs(self, blobs: Iterable[str]) -> set[str]:
        """Which of these blobs are already chunked (so indexing can skip them)."""

    def add_blob(self, blob: str, lines: int, chunks: Sequence[Chunk], terms: Sequence[tuple[str, str]], vectors: np.ndarray | None) -> None:
        """Keep one file version (`lines` long) and its chunks. `terms[i]` is the full-text form of
        chunk i in code-aware tokens (identifiers split into their parts): its names (path and
        symbol), which rank `NAME_WEIGHT` times a match in its body, and its body. `vectors` is
        (len(chunks), dim) float32, unit length, or None when embeddings come later (`set_vectors`)."""

    def set_snapshot(self, repo: str, commit: str, files: Mapping[str, str], root: str = "") -> Snapshot:
        """Record that `repo` at `commit` is these {path: blob}; replaces a snapshot of the same commit."""

    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def missing_vectors(self, limit: int) -> list[tuple[int, str]]:
        """(id, text) of chunks that have no vector yet, up to `limit`."""

    def delete_snapshot(self, repo: str, commit: str) -> None:
        """Forget a snapshot; blobs no snapshot uses any more are deleted with their chunks."""

    # -- reading -------------------------------------------------------------------------------

    def snapshots(self, repo: str | None = None) -> list[Snapshot]:
        """Newest first."""

    def snapshot(self, repo: str, commit: str | None) -> Snapshot | None:
        """`commit` None: the newest; else an exact commit or a unique prefix of at least 4."""

    def files(self, repo: str, commit: str) -> dict[str, str]:
        """{path: blob} of a snapshot."""

    def file_lines(self, repo: str, commit: str, path: str) -> int | None:
        """How many lines a file of the snapshot has; None when the snapshot has no such file."""

    def search_text(self, repo: str, commit: str, query: str, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        """Full-text search of `query` (already in code-aware terms) over the snapshot's chunks:
        (chunk id, score), best first, higher is better."""

    def search_vector(self, repo: str, commit: str, vector: np.ndarray, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        """Nearest chunks by cosine similarity: (chunk id, similarity), best first."""

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        """The chunks with these ids, in the order asked."""

    def file_chunks(self, repo: str, commit: str, path: str) -> list[StoredChunk]:
        """Every chunk of one file in a snapshot, in line order."""

    def close(self) -> None: ...
