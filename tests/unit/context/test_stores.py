"""One test suite, two stores: SQLite (embedded) and Postgres with pgvector (a real server)."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seekgate import errors
from seekgate.context.store.base import Store
from seekgate.context.store.postgres import PostgresStore
from seekgate.context.store.sqlite import SqliteStore
from seekgate.context.terms import code_terms
from seekgate.context.types import Chunk
from tests.fixtures.postgres import fresh_database, postgres_server

DIM = 4


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as uri:
        yield uri


def _open(kind: str, tmp_path: Path, postgres_uri: str | None, dim: int = DIM, db: str | None = None) -> Store:
    if kind == "sqlite":
        return SqliteStore(tmp_path / "context.db", dim, embedder="test")
    assert postgres_uri is not None
    return PostgresStore(db or fresh_database(postgres_uri), dim, embedder="test")


@pytest.fixture(params=["sqlite", "postgres"])
def opened(request, tmp_path) -> Iterator[tuple[str, Store, str | None]]:
    uri = request.getfixturevalue("postgres") if request.param == "postgres" else None
    db = fresh_database(uri) if uri else None
    store = _open(request.param, tmp_path, uri, db=db)
    yield request.param, store, db
    store.close()


@pytest.fixture
def store(opened) -> Store:
    return opened[1]


def _chunk(path: str, start: int, end: int, symbol: str, text: str, kind: str = "code") -> Chunk:
    return Chunk(path=path, language="python" if kind == "code" else "markdown", kind=kind, start_line=start, end_line=end, symbol=symbol, text=text)  # type: ignore[arg-type]


def _vec(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def _add(store: Store, blob: str, lines: int, chunks: list[Chunk], vectors: list[np.ndarray] | None) -> None:
    terms = [(code_terms(f"{c.path} {c.symbol}"), code_terms(c.text)) for c in chunks]
    store.add_blob(blob, lines, chunks, terms, None if vectors is None else np.vstack(vectors))


def _seed(store: Store) -> None:
    """Commit A: parser.py and README.md; commit B: parser.py changed, cache.py added."""
    parser_a = [_chunk("src/parser.py", 1, 10, "parse_http_response", "def parse_http_response(raw):\n    return headers, body")]
    parser_b = [_chunk("src/parser.py", 1, 12, "parse_http_response", "def parse_http_response(raw, strict):\n    return headers, body")]
    cache = [_chunk("src/cache.py", 1, 8, "LruCache.evict", "def evict(self):\n    drop the least recently used entry"),
             _chunk("src/cache.py", 10, 20, "LruCache.get", "def get(self, key):\n    return self.items[key]")]  # fmt: skip
    readme = [_chunk("README.md", 1, 30, "Parser", "The parser reads an HTTP response and its headers.", kind="doc")]
    _add(store, "blob-parser-a", 10, parser_a, [_vec(1, 0, 0, 0)])
    _add(store, "blob-parser-b", 12, parser_b, [_vec(1, 0.1, 0, 0)])
    _add(store, "blob-cache", 20, cache, [_vec(0, 1, 0, 0), _vec(0, 0.9, 0.1, 0)])
    _add(store, "blob-readme", 30, readme, [_vec(0.9, 0, 0, 0.1)])
    store.set_snapshot("app", "aaaa1111", {"src/parser.py": "blob-parser-a", "README.md": "blob-readme"}, root="/src/app")
    store.set_snapshot("app", "bbbb2222", {"src/parser.py": "blob-parser-b", "README.md": "blob-readme", "src/cache.py": "blob-cache"})


def _paths(store: Store, ids: list[int]) -> list[str]:
    return [s.chunk.path for s in store.chunks(ids)]


def test_blobs_are_kept_once_and_known(store):
    _seed(store)
    assert store.has_blobs(["blob-cache", "blob-nope", "blob-readme"]) == {"blob-cache", "blob-readme"}
    _add(store, "blob-cache", 20, [_chunk("src/cache.py", 1, 2, "x", "duplicate")], [_vec(1, 1, 1, 1)])  # ignored: already kept
    assert len(store.file_chunks("app", "bbbb2222", "src/cache.py")) == 2


def test_full_text_finds_identifier_parts_within_the_snapshot(store):
    _seed(store)
    hits = store.search_text("app", "bbbb2222", code_terms("how is an http response parsed", query=True), "code", 10)
    assert _paths(store, [i for i, _ in hits]) == ["src/parser.py"]
    assert hits[0][1] > 0  # higher is better
    # Commit pinning: cache.py does not exist at commit A.
    assert store.search_text("app", "aaaa1111", code_terms("least recently used", query=True), None, 10) == []
    assert _paths(store, [i for i, _ in store.search_text("app", "bbbb2222", code_terms("least recently used", query=True), None, 10)]) == ["src/cache.py"]


def test_kind_filter_separates_code_from_docs(store):
    _seed(store)
    terms = code_terms("parser http response headers", query=True)
    docs = store.search_text("app", "bbbb2222", terms, "doc", 10)
    code = store.search_text("app", "bbbb2222", terms, "code", 10)
    both = store.search_text("app", "bbbb2222", terms, None, 10)
    assert _paths(store, [i for i, _ in docs]) == ["README.md"] and _paths(store, [i for i, _ in code]) == ["src/parser.py"]
    assert {i for i, _ in both} == {i for i, _ in docs} | {i for i, _ in code}


def test_vector_search_ranks_by_cosine_within_the_snapshot(store):
    _seed(store)
    hits = store.search_vector("app", "bbbb2222", _vec(0, 1, 0.05, 0), "code", 3)
    assert [s.chunk.symbol for s in store.chunks([i for i, _ in hits])] == ["LruCache.evict", "LruCache.get", "parse_http_response"]
    assert hits[0][1] == pytest.approx(float(_vec(0, 1, 0.05, 0) @ _vec(0, 1, 0, 0)), abs=1e-5)
    assert {s.chunk.path for s in store.chunks([i for i, _ in store.search_vector("app", "aaaa1111", _vec(0, 1, 0, 0), None, 5)])} == {
        "README.md", "src/parser.py"}  # fmt: skip


def test_snapshots_commits_and_prefixes(store):
    _seed(store)
    assert [s.commit for s in store.snapshots("app")] == ["bbbb2222", "aaaa1111"]
    assert store.snapshot("app", None).commit == "bbbb2222"  # type: ignore[union-attr]
    assert store.snapshot("app", "aaaa").commit == "aaaa1111"  # type: ignore[union-attr]
    assert store.snapshot("app", "aaaa1111").root == "/src/app"  # type: ignore[union-attr]
    assert store.snapshot("app", "cccc") is None and store.snapshot("other", None) is None
    store.set_snapshot("app", "aaaa9999", {})
    with pytest.raises(errors.InvalidRequest, match="ambiguous"):
        store.snapshot("app", "aaaa")
    with pytest.raises(errors.InvalidRequest, match="too short"):
        store.snapshot("app", "aa")


def test_files_lines_and_whole_file_chunks(store):
    _seed(store)
    assert store.files("app", "aaaa1111") == {"src/parser.py": "blob-parser-a", "README.md": "blob-readme"}
    assert store.file_lines("app", "bbbb2222", "src/parser.py") == 12 and store.file_lines("app", "aaaa1111", "src/parser.py") == 10
    assert store.file_lines("app", "aaaa1111", "src/cache.py") is None
    assert [c.chunk.symbol for c in store.file_chunks("app", "bbbb2222", "src/cache.py")] == ["LruCache.evict", "LruCache.get"]


def test_deleting_a_snapshot_collects_blobs_no_other_uses(store):
    _seed(store)
    store.delete_snapshot("app", "aaaa1111")
    assert store.has_blobs(["blob-parser-a", "blob-parser-b", "blob-readme"]) == {"blob-parser-b", "blob-readme"}
    assert store.snapshot("app", "aaaa") is None
    assert store.search_text("app", "bbbb2222", code_terms("response", query=True), "code", 5)  # the rest still searches


def test_vectors_can_come_later(store):
    _add(store, "blob-late", 3, [_chunk("late.py", 1, 3, "later", "def later(): pass")], None)
    store.set_snapshot("app", "cccc3333", {"late.py": "blob-late"})
    missing = store.missing_vectors(10)
    assert [text for _, text in missing] == ["def later(): pass"]
    assert store.search_vector("app", "cccc3333", _vec(1, 0, 0, 0), None, 5) == []
    store.set_vectors([missing[0][0]], np.vstack([_vec(1, 0, 0, 0)]))
    assert store.missing_vectors(10) == []
    assert [i for i, _ in store.search_vector("app", "cccc3333", _vec(1, 0, 0, 0), None, 5)] == [missing[0][0]]


@pytest.mark.parametrize("hostile", ['a" OR (', "NEAR(x y", "*", "-", "AND OR NOT", "'; DROP TABLE x; --", "ünïcödé 变量", "\\ \\' ''"])
def test_hostile_query_text_never_breaks_the_full_text_syntax(store, hostile):
    _seed(store)
    store.search_text("app", "bbbb2222", hostile, None, 5)  # raises nothing
    store.search_text("app", "bbbb2222", code_terms(hostile, query=True), None, 5)


def test_an_index_reopens_with_its_data_and_refuses_another_width(opened, tmp_path):
    kind, store, db = opened
    _seed(store)
    store.close()
    uri = db
    assert (uri is not None) == (kind == "postgres")
    again = PostgresStore(uri, DIM) if kind == "postgres" else SqliteStore(tmp_path / "context.db", DIM)  # type: ignore[arg-type]
    try:
        assert again.snapshot("app", None).commit == "bbbb2222"  # type: ignore[union-attr]
    finally:
        again.close()
    with pytest.raises(errors.InvalidRequest, match="4-dimension vectors"):
        PostgresStore(uri, 8, embedder="bigger") if kind == "postgres" else SqliteStore(tmp_path / "context.db", 8, embedder="bigger")  # type: ignore[arg-type]
