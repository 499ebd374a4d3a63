"""The team store: Postgres with pgvector, for indexes shared by several gateways or too large
for one machine's memory.

The same tables as the SQLite store. Full text is a `tsvector` over the chunks' code-aware
terms (the `simple` configuration: the terms are already split and stemmed) with a GIN index,
names weighted A and bodies D, ranked by ts_rank_cd, Postgres's cover-density ranking (it has no BM25; retrieval fuses ranks,
not scores, so the lists still combine). Vectors are a `vector(dim)` column with an HNSW index
for cosine distance; a search restricted to one snapshot filters the nearest candidates by the
snapshot's blobs (iterative index scans keep the filtered result complete).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from seekgate import errors
from seekgate.context.store.base import CHUNK_COLUMNS, NAME_WEIGHT, pick_snapshot, query_terms, stored_chunk
from seekgate.context.types import Chunk, Kind, Snapshot, StoredChunk

__all__ = ["PostgresStore"]


def _schema(dim: int) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE TABLE IF NOT EXISTS seekgate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS seekgate_blobs (blob TEXT PRIMARY KEY, lines INTEGER NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS seekgate_chunks (
            id BIGSERIAL PRIMARY KEY, blob TEXT NOT NULL REFERENCES seekgate_blobs(blob) ON DELETE CASCADE,
            path TEXT NOT NULL, language TEXT NOT NULL, kind TEXT NOT NULL, start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL, symbol TEXT NOT NULL, parent TEXT NOT NULL, text TEXT NOT NULL,
            terms TSVECTOR NOT NULL, embedding vector({dim}))""",
        "CREATE INDEX IF NOT EXISTS seekgate_chunks_blob ON seekgate_chunks(blob)",
        "CREATE INDEX IF NOT EXISTS seekgate_chunks_terms ON seekgate_chunks USING GIN (terms)",
        "CREATE INDEX IF NOT EXISTS seekgate_chunks_embedding ON seekgate_chunks USING hnsw (embedding vector_cosine_ops)",
        """CREATE TABLE IF NOT EXISTS seekgate_snapshots (
            repo TEXT NOT NULL, commit_id TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, root TEXT NOT NULL,
            files INTEGER NOT NULL, PRIMARY KEY (repo, commit_id))""",
        """CREATE TABLE IF NOT EXISTS seekgate_snapshot_files (
            repo TEXT NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL, blob TEXT NOT NULL,
            PRIMARY KEY (repo, commit_id, path))""",
        "CREATE INDEX IF NOT EXISTS seekgate_snapshot_files_blob ON seekgate_snapshot_files(repo, commit_id, blob)",
    ]


class PostgresStore:
    def __init__(self, url: str, dim: int, embedder: str = "") -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        self.dim = dim
        self._lock = threading.RLock()
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise errors.UpstreamUnavailable(f"cannot connect to the Postgres index store: {str(exc).strip()}") from None
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(7411)")  # two gateways creating the schema at once
            for statement in _schema(dim):
                self._db.execute(statement)
            meta = dict(self._db.execute("SELECT key, value FROM seekgate_meta").fetchall())
            if not meta:
                self._db.execute("INSERT INTO seekgate_meta VALUES ('dim', %s), ('embedder', %s)", (str(dim), embedder))
            elif int(meta["dim"]) != dim:
                raise errors.InvalidRequest(
                    f"the Postgres index holds {meta['dim']}-dimension vectors from embedder {meta.get('embedder')!r}; "
                    f"the configured embedder {embedder!r} makes {dim}: use that embedder, or another database"
                )
        register_vector(self._db)
        self._db.execute("SET hnsw.iterative_scan = relaxed_order")

    # -- writing -------------------------------------------------------------------------------

    def has_blobs(self, blobs: Iterable[str]) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT blob FROM seekgate_blobs WHERE blob = ANY(%s)", (list(blobs),)).fetchall()
        return {r[0] for r in rows}

    def add_blob(self, blob: str, lines: int, chunks: Sequence[Chunk], terms: Sequence[tuple[str, str]], vectors: np.ndarray | None) -> None:
        with self._lock, self._db.transaction():
            inserted = self._db.execute("INSERT INTO seekgate_blobs VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING blob", (blob, lines))
            if inserted.fetchone() is None:
                return
            with self._db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO seekgate_chunks (blob, path, language, kind, start_line, end_line, symbol, parent, text, terms, embedding) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'D'), %s)",
                    [
                        (blob, c.path, c.language, c.kind, c.start_line, c.end_line, c.symbol, c.parent, c.text.replace("\0", ""), *t,
                         None if vectors is None else np.asarray(vectors[i], dtype=np.float32))
                        for i, (c, t) in enumerate(zip(chunks, terms))
                    ],
                )  # fmt: skip

    def set_snapshot(self, repo: str, commit: str, files: Mapping[str, str], root: str = "") -> Snapshot:
        created = time.time()
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM seekgate_snapshot_files WHERE repo = %s AND commit_id = %s", (repo, commit))
            self._db.execute(
                "INSERT INTO seekgate_snapshots VALUES (%s, %s, %s, %s, %s) ON CONFLICT (repo, commit_id) "
                "DO UPDATE SET created = EXCLUDED.created, root = EXCLUDED.root, files = EXCLUDED.files",
                (repo, commit, created, root, len(files)),
            )
            with self._db.cursor() as cur:
                with cur.copy("COPY seekgate_snapshot_files (repo, commit_id, path, blob) FROM STDIN") as copy:
                    for path, blob in files.items():
                        copy.write_row((repo, commit, path, blob))
        return Snapshot(repo=repo, commit=commit, created=created, files=len(files), root=root)

    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(
                "UPDATE seekgate_chunks SET embedding = %s WHERE id = %s", [(np.asarray(v, np.float32), int(i)) for i, v in zip(ids, vectors)]
            )

    def missing_vectors(self, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, text FROM seekgate_chunks WHERE embedding IS NULL ORDER BY id LIMIT %s", (limit,))
            return [(r[0], r[1]) for r in rows.fetchall()]

    def delete_snapshot(self, repo: str, commit: str) -> None:
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM seekgate_snapshot_files WHERE repo = %s AND commit_id = %s", (repo, commit))
            self._db.execute("DELETE FROM seekgate_snapshots WHERE repo = %s AND commit_id = %s", (repo, commit))
            self._db.execute("DELETE FROM seekgate_blobs b WHERE NOT EXISTS (SELECT 1 FROM seekgate_snapshot_files f WHERE f.blob = b.blob)")

    # -- reading -------------------------------------------------------------------------------

    def snapshots(self, repo: str | None = None) -> list[Snapshot]:
        sql = "SELECT repo, commit_id, created, files, root FROM seekgate_snapshots" + (" WHERE repo = %s" if repo else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created DESC", (repo,) if repo else ()).fetchall()
        return [Snapshot(repo=r[0], commit=r[1], created=r[2], files=r[3], root=r[4]) for r in rows]

    def snapshot(self, repo: str, commit: str | None) -> Snapshot | None:
        return pick_snapshot(self.snapshots(repo), repo, commit)

    def files(self, repo: str, commit: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT path, blob FROM seekgate_snapshot_files WHERE repo = %s AND commit_id = %s", (repo, commit))
            return dict(rows.fetchall())

    def file_lines(self, repo: str, commit: str, path: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT b.lines FROM seekgate_snapshot_files f JOIN seekgate_blobs b ON b.blob = f.blob "
                "WHERE f.repo = %s AND f.commit_id = %s AND f.path = %s",
                (repo, commit, path),
            ).fetchone()
        return None if row is None else int(row[0])

    def search_text(self, repo: str, commit: str, query: str, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        # Word characters only: nothing a user types can reach to_tsquery's syntax.
        terms = [w for w in (re.sub(r"\W", "", t) for t in query_terms(query)) if w]
        if not terms:
            return []
        tsquery = " | ".join(f"'{t}'" for t in terms)
        sql = (
            f"SELECT c.id, ts_rank_cd('{{{1 / NAME_WEIGHT}, 0, 0, 1}}', c.terms, q) AS rank FROM seekgate_chunks c, to_tsquery('simple', %s) q "
            "WHERE c.terms @@ q AND c.blob IN (SELECT blob FROM seekgate_snapshot_files WHERE repo = %s AND commit_id = %s)"
            + (" AND c.kind = %s" if kind else "")
            + " ORDER BY rank DESC, c.id LIMIT %s"
        )
        with self._lock:
            rows = self._db.execute(sql, (tsquery, repo, commit, *((kind,) if kind else ()), limit)).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def search_vector(self, repo: str, commit: str, vector: np.ndarray, kind: Kind | None, limit: int) -> list[tuple[int, float]]:
        sql = (
            "SELECT c.id, 1 - (c.embedding <=> %s) AS similarity FROM seekgate_chunks c WHERE c.embedding IS NOT NULL "
            "AND c.blob IN (SELECT blob FROM seekgate_snapshot_files WHERE repo = %s AND commit_id = %s)"
            + (" AND c.kind = %s" if kind else "")
            + " ORDER BY c.embedding <=> %s LIMIT %s"
        )
        v = np.asarray(vector, dtype=np.float32)
        with self._lock:
            rows = self._db.execute(sql, (v, repo, commit, *((kind,) if kind else ()), v, limit)).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        if not ids:
            return []
        with self._lock:
            rows = self._db.execute(f"SELECT {CHUNK_COLUMNS} FROM seekgate_chunks WHERE id = ANY(%s)", (list(ids),)).fetchall()
        found = {r[0]: stored_chunk(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def file_chunks(self, repo: str, commit: str, path: str) -> list[StoredChunk]:
        sql = (
            f"SELECT {CHUNK_COLUMNS} FROM seekgate_chunks WHERE blob = (SELECT blob FROM seekgate_snapshot_files "
            "WHERE repo = %s AND commit_id = %s AND path = %s) ORDER BY start_line, id"
        )
        with self._lock:
            return [stored_chunk(r) for r in self._db.execute(sql, (repo, commit, path)).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

