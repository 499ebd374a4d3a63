"""Hybrid retrieval: full-text and embeddings, each ranked per chunk and per file, fused by rank.

Three ranked lists are fused by reciprocal rank (score = sum of 1 / (K + rank)):

    lexical    BM25 over code-aware terms (identifiers split into their words)
    dense      cosine similarity of embeddings
    file       files ranked by the evidence of all their chunks in both lists; every chunk of a
               file gets its file's rank. A short description of behaviour ("retries a failed
               upload") often matches a file as a whole better than any one chunk of it.

Rank fusion needs no score calibration between BM25 and cosine, which differ in scale from
query to query. Code and prose are ranked apart (kind "code" / "doc") and merged only at the
end: README text otherwise drowns lexical matches on code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from seekgate import errors
from seekgate.context.embed import Embedder
from seekgate.context.store.base import Store
from seekgate.context.terms import code_terms
from seekgate.context.types import Hit, Kind, Snapshot

__all__ = ["Mode", "Retriever"]

Mode = Literal["hybrid", "bm25", "dense"]
RRF_K = 60
CANDIDATES = 60
"""Chunks taken from each list before fusion."""
_FILE_DECAY = (1.0, 0.5, 0.25)
"""A file's evidence: its best chunk's fused score, plus half its second, a quarter its third."""


class Retriever:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self._store = store
        self._embedder = embedder

    def snapshot(self, repo: str, commit: str | None) -> Snapshot:
        found = self._store.snapshot(repo, commit)
        if found is None:
            known = self._store.snapshots(repo)
            if not known:
                names = sorted({s.repo for s in self._store.snapshots()})
                raise errors.NotFound(f"no index named {repo!r}; indexed: {', '.join(names) or 'none (run seekgate index PATH)'}")
            commits = ", ".join(s.commit[:12] for s in known[:10])
            raise errors.NotFound(f"{repo} has no index at commit {commit!r}; indexed commits: {commits}")
        return found

    def search(self, repo: str, commit: str | None, query: str, top_k: int = 3, kind: Kind | None = None, mode: Mode = "hybrid") -> list[Hit]:
        """The best `top_k` chunks for `query` in `repo` at `commit` (None: the newest index)."""
        if not query.strip():
            raise errors.InvalidRequest("the query is empty")
        snap = self.snapshot(repo, commit)
        vector = self._embedder.embed([query], query=True)[0] if mode != "bm25" else None
        terms = code_terms(query, query=True) if mode != "dense" else ""
        kinds: Sequence[Kind] = (kind,) if kind else ("code", "doc")
        fused: dict[int, float] = {}
        for k in kinds:
            fused.update(self._fuse(snap, terms, vector, k, mode))
        best = sorted(fused, key=lambda i: -fused[i])[:top_k]
        return [Hit(chunk=s.chunk, score=round(fused[s.id], 6), commit=snap.commit, id=s.id) for s in self._store.chunks(best)]

    def _fuse(self, snap: Snapshot, terms: str, vector: object, kind: Kind, mode: Mode) -> dict[int, float]:
        lists: list[list[int]] = []
        if terms:
            lists.append([i for i, _ in self._store.search_text(snap.repo, snap.commit, terms, kind, CANDIDATES)])
        if vector is not None:
            lists.append([i for i, _ in self._store.search_vector(snap.repo, snap.commit, vector, kind, CANDIDATES)])  # type: ignore[arg-type]
        scores: dict[int, float] = defaultdict(float)
        for ranked in lists:
            for rank, i in enumerate(ranked):
                scores[i] += 1.0 / (RRF_K + rank + 1)
        if not scores:
            return {}
        # File evidence: files ranked by their chunks' fused scores; each chunk gets its file's rank.
        paths = {s.id: s.chunk.path for s in self._store.chunks(list(scores))}
        per_file: dict[str, list[float]] = defaultdict(list)
        for i, score in scores.items():
            per_file[paths[i]].append(score)
        evidence = {p: sum(w * s for w, s in zip(_FILE_DECAY, sorted(v, reverse=True))) for p, v in per_file.items()}
        file_rank = {p: r for r, p in enumerate(sorted(evidence, key=lambda p: -evidence[p]))}
        return {i: s + 1.0 / (RRF_K + file_rank[paths[i]] + 1) for i, s in scores.items()}
