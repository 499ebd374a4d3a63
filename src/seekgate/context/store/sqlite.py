"""The embedded index store: one SQLite file, full text by FTS5 (BM25), vectors by numpy.

Vectors are float32 BLOBs beside their chunks, and dense search is an exact scan: the
snapshot's vectors are loaded once into one matrix (kept until the next write) and a query is
one matrix-vector product. At the sizes one machine indexes this is the fast path: 100,000
chunks of 256 dimensions are 100 MB and scan in about 10 ms on this project's 2-core machine;
sqlite-vec's vec0 tables also scan exhaustively, through SQLite's row machinery, and would add
a native extension to load. Past a few hundred thousand chunks, use the Postgres store (HNSW).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from seekgate import errors
from seekgate.context.store.base import CHUNK_COLUMNS, NAME_WEIGHT, pick_snapshot, query_terms, stored_chunk
from seekgate.context.types import Chunk, Kind, Snapshot, StoredChunk

__all__ = ["SqliteStore", "fts_query"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (blob TEXT PRIMARY KEY, lines INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, blob TEXT NOT NULL REFERENCES blobs(blob) ON DELETE CASCADE,
    path TEXT NOT NULL, language TEXT NOT NULL, kind TEXT NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, symbol TEXT NOT NULL, parent TEXT NOT NULL, text TEXT NOT NULL, vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_blob ON chunks(blob);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(names, terms, tokenize = 'unicode61');
CREATE TABLE IF NOT EXISTS snapshots (
    repo TEXT NOT NULL, commit_id TEXT NOT NULL, created REAL NOT NULL, root TEXT NOT NULL, files INTEGER NOT NULL,
    PRIMARY KEY (repo, commit_id)
);
CREATE TABLE IF NOT EXISTS snapshot_files (
    repo TEXT NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL, blob TEXT NOT NULL,
    PRIMARY KEY (repo, commit_id, path)
);
CREATE INDEX IF NOT EXISTS snapshot_files_blob ON snapshot_files(repo, commit_id, blob);
"""


def fts_query(terms: str) -> str:
    """An OR of the distinct terms, each quoted: no user text can reach FTS5's query syntax."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in query_terms(terms))


class SqliteStore:
    def __init__(self, path: Path, dim: int, embedder: str = "") -> None:
        self.path = path
        self.dim = dim
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", [("dim", str(dim)), ("embedder", embedder)])
        if meta and int(meta["dim"]) != dim:
            self._db.close()
            raise errors.InvalidRequest(
                f"the index at {path} holds {meta['dim']}-dimension vectors from embedder {meta.get('embedder')!r}; "
                f"the configured embedder {embedder!r} makes {dim}: use that embedder, or another data_dir"
            )
        self._matrices: dict[tuple[str, str, str | None], tuple[np.ndarray, np.ndarray]] = {}

    # -- writing -------------------------------------------------------------------------------

    def has_blobs(self, blobs: Iterable[str]) -> set[str]:
        wanted = list(blobs)
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                rows = self._db.execute(f"SELECT blob FROM blobs WHERE blob IN ({','.join('?' * len(part))})", part)
                found.update(r[0] for r in rows)
        return found

    def add_blob(self, blob: str, lines: int, chunks: Sequence[Chunk], terms: Sequence[tuple[str, str]], vectors: np.ndarray | None) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            if self._db.execute("SELECT 1 FROM blobs WHERE blob = ?", (blob,)).fetchone():
                return
            self._db.execute("INSERT INTO blobs VALUES (?, ?)", (blob, lines))
            for i, (c, t) in enumerate(zip(chunks, terms)):
                vector = None if vectors is None else np.asarray(vectors[i], dtype=np.float32).tobytes()
                cur = self._db.execute(
                    "INSERT INTO chunks (blob, path, language, kind, start_line, end_line, symbol, parent, text, vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (blob, c.path, c.language, c.kind, c.start_line, c.end_line, c.symbol, c.parent, c.text, vector),
                )
                self._db.execute("INSERT INTO chunks_fts (rowid, names, terms) VALUES (?, ?, ?)", (cur.lastrowid, *t))
            self._matrices.clear()

    def set_snapshot(self, repo: str, commit: str, files: Mapping[str, str], root: str = "") -> Snapshot:
        created = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshot_files WHERE repo = ? AND commit_id = ?", (repo, commit))
            self._db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?)", (repo, commit, created, root, len(files)))
            self._db.executemany("INSERT INTO snapshot_files VALUES (?, ?, ?, ?)", [(repo, commit, p, b) for p, b in files.items()])
            self._matrices.clear()
        return Snapshot(repo=repo, commit=commit, created=created, files=len(files), root=root)

    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE chunks SET vector = ? WHERE id = ?", [(np.asarray(v, np.float32).tobytes(), int(i)) for i, v in zip(ids, vectors)]
            )
            self._matrices.clear()

    def missing_vectors(self, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            return [(r[0], r[1]) for r in self._db.execute("SELECT id, text FROM chunks WHERE vector IS NULL ORDER BY id LIMIT ?", (limit,))]

    def delete_snapshot(self, repo: str, commit: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshot_files WHERE repo = ? AND commit_id = ?", (repo, commit))
            self._db.execute("DELETE FROM snapshots WHERE repo = ? AND commit_id = ?", (repo, commit))
            orphans = [r[0] for r in self._db.execute("SELECT blob FROM blobs WHERE blob NOT IN (SELECT blob FROM snapshot_files)")]
            for blob in orphans:
                self._db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE blob = ?)", (blob,))
                self._db.execute("DELETE FROM chunks WHERE blob = ?", (blob,))
                self._db.execute("DELETE FROM blobs WHERE blob = ?", (blob,))
            self._matrices.clear()

    # -- reading -------------------------------------------------------------------------------

    def snapshots(self, repo: str | None = None) -> list[Snapshot]:
        sql = "SELECT repo, commit_id, created, files, root FROM snapshots" + (" WHERE repo = ?" if repo else "") + " ORDER BY created DESC"
        with self._lock:
            rows = self._db.execute(sql, (repo,) if repo else ()).fetchall()
        return [Snapshot(repo=r[0], commit=r[1], created=r[2], files=r[3], root=r[4]) for r in rows]

    def snapshot(self, repo: str, commit: str | None) -> Snapshot | None:
        return pick_snapshot(self.snapshots(repo), repo, commit)

    def files(self, repo: str, commit: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT path, blob FROM snapshot_files WHERE repo = ? AND commit_id = ?", (repo, commit))
            return dict(rows.fetchall())

    def file_lines(self, repo: str, commit: str, path: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT b.lines FROM snapshot_files f JOIN blobs b ON b.blob = f.blob WHERE f.repo = ? AND f.commit_id = ? AND f.path = ?",
                (repo, commit, path),
            ).fetchone()
        return None if row is None else int(row[0])

    def search_text(self, repo: str, commit: str, query: str, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        match = fts_query(query)
        if not match:
            return []
        sql = (
            f"SELECT c.id, bm25(chunks_fts, {NAME_WEIGHT}, 1.0) AS rank FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? AND c.blob IN (SELECT blob FROM snapshot_files WHERE repo = ? AND commit_id = ?)"
            + (" AND c.kind = ?" if kind else "")
            + " ORDER BY rank LIMIT ?"
        )
        args: tuple[object, ...] = (match, repo, commit, *((kind,) if kind else ()), limit)
        with self._lock:
            return [(r[0], -float(r[1])) for r in self._db.execute(sql, args)]

    def search_vector(self, repo: str, commit: str, vector: np.ndarray, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        ids, matrix = self._matrix(repo, commit, kind)
        if not len(ids):
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argpartition(-scores, min(limit, len(scores)) - 1)[:limit]
        top = top[np.argsort(-scores[top])]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def _matrix(self, repo: str, commit: str, kind: Kind | None) -> tuple[np.ndarray, np.ndarray]:
        key = (repo, commit, kind)
        with self._lock:
            if key not in self._matrices:
                sql = (
                    "SELECT id, vector FROM chunks WHERE vector IS NOT NULL "
                    "AND blob IN (SELECT blob FROM snapshot_files WHERE repo = ? AND commit_id = ?)" + (" AND kind = ?" if kind else "")
                )
                rows = self._db.execute(sql, (repo, commit, *((kind,) if kind else ()))).fetchall()
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
                self._matrices[key] = (ids, matrix)
            return self._matrices[key]

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        if not ids:
            return []
        with self._lock:
            rows = self._db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(ids))})", list(ids)).fetchall()
        found = {r[0]: stored_chunk(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def file_chunks(self, repo: str, commit: str, path: str) -> list[StoredChunk]:
        sql = (
            f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE blob = "
            "(SELECT blob FROM snapshot_files WHERE repo = ? AND commit_id = ? AND path = ?) ORDER BY start_line, id"
        )
        with self._lock:
            return [stored_chunk(r) for r in self._db.execute(sql, (repo, commit, path))]

    def close(self) -> None:
        with self._lock:
            self._db.close()

