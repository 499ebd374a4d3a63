"""The context layer built from the settings: one store, one embedder, an indexer and a retriever.

The embedder and the store open on first use, not at start-up: a gateway that never answers a
rag task never loads an embedding model. Everything here blocks; the gateway calls it from
worker threads.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from seekgate import errors
from seekgate.settings import ContextSettings, resolve_secret

if TYPE_CHECKING:  # the parts load on first use: tree-sitter, the embedder, the store driver
    from seekgate.context.embed import Embedder
    from seekgate.context.index import Indexer
    from seekgate.context.retrieve import Retriever
    from seekgate.context.store.base import Store

__all__ = ["ContextService", "open_store"]


def open_store(settings: ContextSettings, data_path: Path, dim: int, embedder_name: str) -> Store:
    if settings.store == "postgres":
        url = resolve_secret(settings.postgres_url) if (settings.postgres_url or "").startswith("env::") else settings.postgres_url
        if not url:
            raise errors.InvalidRequest(f"context.store is postgres but context.postgres_url ({settings.postgres_url}) is not set")
        from seekgate.context.store.postgres import PostgresStore

        return PostgresStore(url, dim, embedder=embedder_name)
    from seekgate.context.store.sqlite import SqliteStore

    data_path.mkdir(parents=True, exist_ok=True)
    return SqliteStore(data_path / "context.db", dim, embedder=embedder_name)


class ContextService:
    def __init__(self, settings: ContextSettings, data_path: Path) -> None:
        self.settings = settings
        self._data_path = data_path
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._store: Store | None = None

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from seekgate.context.embed import open_embedder

                self._embedder = open_embedder(self.settings)
            return self._embedder

    @property
    def store(self) -> Store:
        embedder = self.embedder
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings, self._data_path, embedder.dim, embedder.name)
            return self._store

    def indexer(self) -> Indexer:
        from seekgate.context.chunking import ChunkOptions
        from seekgate.context.index import Indexer

        s = self.settings
        options = ChunkOptions(window_lines=s.window_lines, window_overlap=s.window_overlap, doc_chunk_tokens=s.doc_chunk_tokens)
        return Indexer(self.store, self.embedder, options, s.max_file_bytes)

    def retriever(self) -> Retriever:
        from seekgate.context.retrieve import Retriever

        return Retriever(self.store, self.embedder)

    def default_repo(self) -> str:
        """The configured default repository, or the only one indexed."""
        if self.settings.default_repo:
            return self.settings.default_repo
        names = sorted({s.repo for s in self.store.snapshots()})
        if len(names) == 1:
            return names[0]
        raise errors.InvalidRequest(
            "name the repository: "
            + (f"several are indexed ({', '.join(names)})" if names else "none is indexed yet (run seekgate index PATH)")
            + "; use X-Context-Refs: REPO[@COMMIT] or context.default_repo",
            param="X-Context-Refs",
        )

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
