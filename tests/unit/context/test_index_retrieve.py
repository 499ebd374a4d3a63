"""Indexing (incremental, commit-pinned) and hybrid retrieval on a small real repository, with the
default embedder (wordllama, shipped in its wheel) and the SQLite store."""

import subprocess
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.context.service import ContextService
from seekgate.settings import ContextSettings

FILES = {
    "src/billing/invoice.py": '''
def render_invoice_pdf(invoice, template):
    """Turn an invoice into a PDF document using the template."""
    pages = template.layout(invoice.lines)
    return pages.to_pdf()


def apply_discount(total, percent):
    return total * (1 - percent / 100)
''',
    "src/net/retry.py": '''
import time


class RetryPolicy:
    def __init__(self, attempts, backoff):
        self.attempts = attempts
        self.backoff = backoff

    def run_with_retries(self, upload):
        for attempt in range(self.attempts):
            try:
                return upload()
            except ConnectionError:
                time.sleep(self.backoff * 2 ** attempt)
        raise RuntimeError("upload failed after every attempt")
''',
    "src/auth/tokens.go": '''
package auth

// VerifyToken checks the signature and expiry of a session token.
func VerifyToken(token string, key []byte) error {
	return checkSignature(token, key)
}
''',
    "docs/setup.md": "# Setup\n\nInstall the package, then configure the database connection string.\n\n## Upgrading\n\nRun migrations after every upgrade.\n",
}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", message)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "shop"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text.lstrip("\n"))
    _git(root, "init", "-q", "-b", "main")
    _commit(root, "first")
    return root


@pytest.fixture
def service(tmp_path):
    svc = ContextService(ContextSettings(top_k=3), tmp_path / "data")
    yield svc
    svc.close()


def test_queries_find_the_chunk_that_does_it(repo, service):
    service.indexer().index(repo)
    retriever = service.retriever()
    cases = {
        "retry a failed upload with backoff": ("src/net/retry.py", "RetryPolicy"),  # a small class stays whole
        "make a PDF from an invoice": ("src/billing/invoice.py", "render_invoice_pdf"),
        "check that a session token has not expired": ("src/auth/tokens.go", "VerifyToken"),
    }
    for query, (path, symbol) in cases.items():
        best = retriever.search("shop", None, query, 3, "code")[0]
        assert (best.chunk.path, best.chunk.symbol) == (path, symbol), query
    doc = retriever.search("shop", None, "how do I upgrade", 3, "doc")[0]
    assert doc.chunk.path == "docs/setup.md" and doc.chunk.kind == "doc"
    # Both kinds ranked apart and merged: each kind's best is there.
    merged = retriever.search("shop", None, "configure the database connection", 5, None)
    assert {h.chunk.kind for h in merged} == {"code", "doc"} and "docs/setup.md" in [h.chunk.path for h in merged]


def test_reindexing_touches_only_changed_files(repo, service):
    first = service.indexer().index(repo)
    assert (first.files, first.indexed) == (4, 4)
    again = service.indexer().index(repo)
    assert again.indexed == 0 and again.commit == first.commit  # nothing read, chunked or embedded again
    (repo / "src/net/retry.py").write_text(FILES["src/net/retry.py"].replace("backoff", "delay"))
    changed = service.indexer().index(repo)
    assert changed.indexed == 1 and changed.commit.startswith(first.commit + "+dirty.")


def test_retrieval_is_pinned_to_a_commit(repo, service):
    first = service.indexer().index(repo).commit
    (repo / "src/net/retry.py").unlink()
    (repo / "src/net/cache.py").write_text("def evict_least_recently_used(cache):\n    cache.pop_oldest()\n")
    second = _commit(repo, "replace retry with cache")
    service.indexer().index(repo)
    retriever = service.retriever()
    query = "retry a failed upload with backoff"
    assert retriever.search("shop", first[:8], query, 1, "code")[0].chunk.path == "src/net/retry.py"
    assert all(h.chunk.path != "src/net/retry.py" for h in retriever.search("shop", second, query, 3, "code"))
    assert retriever.search("shop", None, "evict the least recently used entry", 1, "code")[0].commit == second
    # An older commit indexed straight from git, without a checkout.
    report = service.indexer().index(repo, "shop", first)
    assert report.commit == first and report.indexed == 0  # its blobs were indexed already


def test_unknown_repositories_and_commits_are_clear_errors(repo, service):
    service.indexer().index(repo)
    retriever = service.retriever()
    with pytest.raises(errors.NotFound, match="no index named 'nope'; indexed: shop"):
        retriever.search("nope", None, "x", 3)
    with pytest.raises(errors.NotFound, match="no index at commit 'beef1234'"):
        retriever.search("shop", "beef1234", "x", 3)
    with pytest.raises(errors.InvalidRequest, match="empty"):
        retriever.search("shop", None, "   ", 3)
