"""Indexing: list a repository's files, chunk and embed the ones not yet indexed, record the snapshot.

Incremental by construction: a file version is a blob (its path and content), and a blob the
store already has is neither read nor chunked nor embedded again. A re-run after editing three
files costs three files; indexing another commit costs the files that differ.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seekgate.context.chunking import ChunkOptions, chunk_file
from seekgate.context.embed import Embedder
from seekgate.context.files import SourceFile, list_tree
from seekgate.context.store.base import Store
from seekgate.context.terms import code_terms, plain_words
from seekgate.context.types import Chunk

__all__ = ["IndexReport", "Indexer", "embedding_text"]

_BATCH = 64
"""Chunks embedded per call: large enough to batch well, small enough for a smooth progress bar."""
_EMBED_CHARS = 4000


@dataclass
class IndexReport:
    repo: str
    commit: str
    root: str
    files: int = 0
    indexed: int = 0
    """Files chunked and embedded in this run (new or changed)."""
    chunks: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    lines: int = 0

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (
            f"{self.repo}@{self.commit[:12]}: {self.files} files, {self.indexed} indexed ({self.chunks} chunks, "
            f"{self.lines} lines), {self.files - self.indexed} unchanged; skipped: {skipped}; {self.seconds:.1f} s"
        )


def embedding_text(chunk: Chunk) -> str:
    """What the embedder sees of a chunk: its name, where it is, then its words. Code goes in as
    the words its identifiers are made of: a description of behaviour ("retry a failed upload")
    shares words with `retry_failed_upload`, not with its punctuation and keywords. Prose goes
    in as it is."""
    if chunk.kind == "doc":
        return f"{chunk.symbol}\n{chunk.text}"[:_EMBED_CHARS]
    return f"{plain_words(chunk.symbol)} {plain_words(chunk.path + ' ' + chunk.symbol)}\n{plain_words(chunk.text)}"[:_EMBED_CHARS]


def full_text(chunk: Chunk) -> tuple[str, str]:
    """What full-text search sees: the chunk's names (path and symbol, weighted up) and its body."""
    return code_terms(f"{chunk.path} {chunk.symbol}"), code_terms(chunk.text)


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, options: ChunkOptions, max_file_bytes: int) -> None:
        self._store = store
        self._embedder = embedder
        self._options = options
        self._max_bytes = max_file_bytes

    def index(
        self, root: Path, name: str | None = None, commit: str | None = None, progress: Callable[[int, int], None] | None = None
    ) -> IndexReport:
        """Index `root` (at `commit`, or its working tree) as repository `name` (default: the
        folder's name). `progress(done, total)` is called as files are processed."""
        started = time.perf_counter()
        tree = list_tree(root, commit, self._max_bytes)
        report = IndexReport(repo=name or tree.root.name, commit=tree.commit, root=str(tree.root), files=len(tree.files), skipped=tree.skipped)
        known = self._store.has_blobs(f.blob for f in tree.files)
        todo = [f for f in tree.files if f.blob not in known]
        pending: list[tuple[SourceFile, int, list[Chunk]]] = []
        waiting = 0
        for done, source in enumerate(todo, 1):
            data = source.read()
            chunks = chunk_file(source.path, data, self._options)
            lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
            pending.append((source, lines, chunks))
            waiting += len(chunks)
            report.lines += lines
            if waiting >= _BATCH or done == len(todo):
                report.chunks += self._flush(pending)
                report.indexed += len(pending)
                pending, waiting = [], 0
            if progress is not None:
                progress(done, len(todo))
        if progress is not None and not todo:
            progress(0, 0)
        self._store.set_snapshot(report.repo, tree.commit, {f.path: f.blob for f in tree.files}, root=str(tree.root))
        report.seconds = time.perf_counter() - started
        return report

    def _flush(self, pending: list[tuple[SourceFile, int, list[Chunk]]]) -> int:
        """Embed the chunks of several files in one call and store each file."""
        every = [c for _, _, chunks in pending for c in chunks]
        vectors = self._embedder.embed([embedding_text(c) for c in every]) if every else np.zeros((0, self._embedder.dim), np.float32)
        at = 0
        for source, lines, chunks in pending:
            mine = vectors[at : at + len(chunks)]
            at += len(chunks)
            self._store.add_blob(source.blob, lines, chunks, [full_text(c) for c in chunks], mine)
        return len(every)
